"""The unified message push (统一消息推送): templates, consent, the inbox and its delivery channels."""
