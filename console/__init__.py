"""The web faces: the operators' console (piccolo-admin at /admin, the live dashboard, the scanner
simulator) and the citizen web wallet at /wallet."""
