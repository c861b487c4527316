"""The web faces: the operators' console (piccolo-admin at /admin, the live dashboard, the scanner
simulator), the citizen web wallet at /wallet and the sandbox's payment page at /sandbox/pay/{id}."""
