"""A mini-app for the scan benchmarks: it admits every verified scan from no state, so the figures are
the platform's own cost (the scanner's credential, verification, single use, the account markers,
routing, the answer committed to the journal and the scan's record written behind it) plus a decision
that does nothing."""

from miniapps.contract import Fast, Manifest, MiniApp, ScanDecision, ScanEvent

CONTEXTS = 64
ALLOW = Fast(ScanDecision(allow=True))


class BenchGate(MiniApp):
    manifest = Manifest(
        id="benchgate",
        name_zh="压测闸机",
        name_en="Bench gate",
        version="1.0",
        scan_contexts={f"bench-{i}": None for i in range(CONTEXTS)},
    )

    async def decide(self, scan: ScanEvent, state: bytes | None) -> Fast:
        return ALLOW
