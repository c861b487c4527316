"""A mini-app for the scan benchmark: it admits every verified scan, so the figures are the platform's
own cost (verification, single use, routing) plus a handler that does nothing."""

from miniapps.contract import Manifest, MiniApp, ScanDecision, ScanEvent

CONTEXTS = 64


class BenchGate(MiniApp):
    manifest = Manifest(
        id="benchgate",
        name_zh="压测闸机",
        name_en="Bench gate",
        version="1.0",
        scan_contexts={f"bench-{i}": None for i in range(CONTEXTS)},
    )

    async def on_scan(self, scan: ScanEvent) -> ScanDecision:
        return ScanDecision(allow=True)
