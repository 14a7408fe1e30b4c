"""The contract's topics (section 3), named once; the run's prefix is applied by KafkaSettings."""

from __future__ import annotations

from typing import Final

CAMERA_EVENTS: Final = "camera.events"
PAYMENT_COUNTS: Final = "payments.terminal-counts"
PORTAL_TRANSACTIONS: Final = "portal.transactions"

TRAFFIC_FLOW_1M: Final = "traffic.flow-1m"
PAYMENTS_CASHLESS_1H: Final = "payments.cashless-1h"
PORTAL_KPIS_1D: Final = "portal.kpis-1d"
TRAFFIC_ALERTS: Final = "traffic.alerts"

INPUTS: Final = (CAMERA_EVENTS, PAYMENT_COUNTS, PORTAL_TRANSACTIONS)
OUTPUTS: Final = (TRAFFIC_FLOW_1M, PAYMENTS_CASHLESS_1H, PORTAL_KPIS_1D, TRAFFIC_ALERTS)


def dead_letters_of(source: str) -> str:
    return f"{source}.dlq"


ALL: Final = (*INPUTS, *OUTPUTS, *(dead_letters_of(t) for t in INPUTS))
