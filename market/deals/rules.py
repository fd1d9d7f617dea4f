"""Pure rules of settlement: no database. Weighbridge tolerance and the final amount, the platform
fee, the trace hash and the credit score."""

import hashlib
import json
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
MILLI = Decimal("0.001")
# Units the weighbridge measures: their final quantity follows the net weight.
WEIGHT_UNITS = {"t": Decimal("1"), "kg": Decimal("1000")}


def money(value: Decimal) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class WeighResult:
    net_t: Decimal
    final_quantity: Decimal
    difference: Decimal  # (final - contract) / contract, signed, 4 places
    within_tolerance: bool
    final_amount: Decimal


def weigh(
    *,
    gross_t: Decimal,
    tare_t: Decimal,
    unit: str,
    quantity: Decimal,
    unit_price: Decimal,
    tolerance: Decimal,
) -> WeighResult:
    """The weighbridge decides the quantity of goods sold by weight; goods sold by the piece or by
    volume keep the contract's quantity (the ticket is kept for the record and the statistics)."""
    if gross_t <= tare_t or tare_t < 0:
        raise ValueError("gross must exceed tare, tare must not be negative")
    net_t = (gross_t - tare_t).quantize(MILLI)
    factor = WEIGHT_UNITS.get(unit)
    final_quantity = (net_t * factor).quantize(MILLI) if factor is not None else quantity
    difference = ((final_quantity - quantity) / quantity).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    return WeighResult(
        net_t=net_t,
        final_quantity=final_quantity,
        difference=difference,
        within_tolerance=abs(final_quantity - quantity) <= quantity * tolerance,
        final_amount=money(final_quantity * unit_price),
    )


def fee(amount: Decimal, rate: Decimal) -> Decimal:
    return money(amount * rate)


def unit_price_per_tonne(unit_price: Decimal, unit: str, tonnes_per_unit: Decimal | None) -> Decimal | None:
    """Price indices are in yuan per tonne."""
    if unit == "t":
        return unit_price
    if unit == "kg":
        return money(unit_price * 1000)
    if tonnes_per_unit:
        return money(unit_price / tonnes_per_unit)
    return None


def trace_hash(*, prev_hash: str, chain: str, index: int, event: str, data: dict, occurred_at: str) -> str:
    content = json.dumps(
        {"chain": chain, "index": index, "event": event, "data": data, "at": occurred_at},
        sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str,
    )  # fmt: skip
    return hashlib.sha256(f"{prev_hash}\n{content}".encode()).hexdigest()


GENESIS = "0" * 64


@dataclass(frozen=True)
class CreditRecord:
    """An organisation's track record in completed and failed deals."""

    deals: int = 0  # deals that ended (completed, defaulted or cancelled after a dispute)
    on_time: int = 0  # payments made before the deadline / pickups made in the window
    defaults: int = 0  # deals it defaulted on
    disputes_lost: int = 0  # weight disputes decided against it
    rating_sum: int = 0
    ratings: int = 0


def credit_score(record: CreditRecord, *, base: int = 80) -> int:
    """0-100. A newcomer starts at ``base``; on-time performance and good ratings raise the score
    slowly, a default costs 15 points, a lost dispute 5; ratings pull towards their average."""
    score = Decimal(base)
    score += min(Decimal(record.on_time), Decimal(20)) * Decimal("0.5")
    score -= Decimal(15 * record.defaults + 5 * record.disputes_lost)
    if record.ratings:
        average = Decimal(record.rating_sum) / Decimal(record.ratings)  # 1..5
        weight = min(Decimal(record.ratings), Decimal(10)) / Decimal(10)
        score += (average - Decimal(4)) * Decimal(5) * weight
    return int(max(Decimal(0), min(Decimal(100), score)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
