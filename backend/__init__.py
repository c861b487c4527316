"""The Shengshitong web backend: app factory, settings, storage wiring, middleware, scan routing, CLI."""
