"""Payment channels behind one interface: WeChat Pay v3, Alipay, and the local sandbox."""
