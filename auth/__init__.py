"""Identity: citizens, devices, tokens, scanner / mini-app / merchant credentials."""
