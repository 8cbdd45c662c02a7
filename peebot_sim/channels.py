"""How each catalogue channel behaves in the simulator (its `Profile`), from its metadata.

The urine, UPA, water and time items are special systems of the model (`model.py`); every
other channel gets a profile here: a sampled wave, a rotating angle, a clock, or rare steps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from peebot_iss.catalog import TIME_ITEM, UPA_STATE, URINE_TANK, YEAR_ITEM, Channel

WASTE_WATER = "NODE3000008"
CLEAN_WATER = "NODE3000009"
WPA_STATE = "NODE3000006"
WPA_STEP = "NODE3000007"

ORBIT_S = 92.9 * 60
DAY_S = 86400


@dataclass(frozen=True)
class Profile:
    """How one channel behaves. kinds: time, year, urine, upa, water (special systems);
    wave (sampled: base + amp*sin + noise), wrap (rotating angle), clock (seconds count);
    enum (rare code changes), rare (rare analog steps), counter (rare +1 steps)."""

    kind: str
    interval_s: float = 0.0
    base: float = 0.0
    amp: float = 0.0
    period_s: float = ORBIT_S
    sd: float = 0.0
    decimals: int = 2
    per_day: float = 0.0  # rare kinds: changes per day
    essential: bool = False


def decimals_of(ch: Channel) -> int:
    m = re.search(r"\{0:[fd](\d+)\}", ch.format_spec)
    return int(m.group(1)) if m else 2


def enum_codes_of(ch: Channel) -> dict[int, str]:
    if ch.enum_codes:
        return dict(ch.enum_codes)
    codes = {}
    for part in re.split(r"\|", ch.format_spec):
        m = re.match(r"^\s*(-?\d+)\s*=\s*(.*?)\s*$", part)
        if m:
            codes[int(m.group(1))] = m.group(2)
    return codes if len(codes) >= 2 else {}


_NOMINAL_WORDS = (
    "NORMAL",
    "PROCESS",
    "NOT-OFF OK",
    "IN USE",
    "ENABLED",
    "ACTIVE",
    "AUTOTRACK",
    "ON",
    "LOCKED",
    "CMG ATTITUDE CONTROL",
    "DOING POSITION FIXES",
    "MICROGRAVITY",
    "STANDARD",
)


def nominal_code(codes: dict[int, str]) -> int:
    """The code a channel normally shows (a plausible 'all is well' state)."""
    for word in _NOMINAL_WORDS:
        for code, label in codes.items():
            if label.upper() == word or label.upper().startswith(word + " "):
                return code
    return min(codes)


def profile_for(ch: Channel) -> Profile:
    item, desc, units = ch.item_id, ch.description.lower(), ch.units.upper()
    dec = decimals_of(ch)
    if item == TIME_ITEM:
        return Profile("time", essential=True)
    if item == YEAR_ITEM:
        return Profile("year", essential=True)
    if item in (URINE_TANK, UPA_STATE):
        return Profile("urine" if item == URINE_TANK else "upa", essential=True)
    if item in (WASTE_WATER, CLEAN_WATER, WPA_STATE, WPA_STEP):
        return Profile("water", decimals=2, essential=True)
    if item == "NODE3000011":  # O2 production rate, set by the crew a few times a day
        return Profile("rare", base=5.4, amp=1.8, decimals=2, per_day=3)
    if enum_codes_of(ch):
        return Profile("enum", per_day=0.5 if item != "USLAB000081" else 4.0)
    if units == "INTEGR" or ("count" in desc and units in ("ND", "INTEGR")):
        return Profile("counter", base=1000 if "command" in desc else 6, decimals=0, per_day=24)
    if "number of control moment" in desc:
        return Profile("rare", base=4, decimals=0, per_day=0.1)
    if item.startswith("CSA"):  # robotics: parked most of the time
        return Profile(
            "rare", base=180.0 if units == "DEG" else 300.0, amp=150, decimals=2, per_day=2
        )
    if ("joint angle" in desc and "sarj" in desc) or "commanded position" in desc:
        return Profile("wrap", interval_s=10, sd=0.01, decimals=dec)
    if "trrj" in desc:
        return Profile("wave", interval_s=30, base=0, amp=60, sd=0.02, decimals=dec)
    if "beta gimble" in desc:
        return Profile(
            "wave", interval_s=60, base=180, amp=3, period_s=DAY_S, sd=0.03, decimals=dec
        )
    if "gimbal" in desc or "sgant" in desc:
        return Profile("wave", interval_s=10, base=0, amp=70, sd=0.02, decimals=dec)
    if "quaternion" in desc:
        return Profile("wave", interval_s=10, base=0.2, amp=0.5, sd=2e-4, decimals=dec)
    if units == "FT":  # J2000 state vector position
        return Profile("wave", interval_s=10, base=0, amp=2.23e7, sd=0, decimals=dec)
    if units == "FT/S":
        return Profile("wave", interval_s=10, base=0, amp=25_100, sd=0, decimals=dec)
    if units in ("RAD", "RAD/S"):
        return Profile("wave", interval_s=10, base=0, amp=0.02, sd=0.004, decimals=dec)
    if units == "FT-LB":
        return Profile("wave", interval_s=10, base=0, amp=3, sd=1.5, decimals=dec)
    if units == "FT-LB-S":
        return Profile("wave", interval_s=60, base=4000, amp=1500, sd=5, decimals=dec)
    if units == "RPM":
        return Profile("wave", interval_s=60, base=6600, amp=0.5, sd=0.8, decimals=dec)
    if units == "KG":
        return Profile("rare", base=454_000, amp=2000, decimals=0, per_day=0.05)
    if units == "S":
        return Profile("clock", interval_s=10, decimals=min(dec, 3))
    if "solar beta" in desc:
        return Profile("wave", interval_s=300, base=0, amp=60, period_s=60 * DAY_S, decimals=dec)
    if units in ("M", "M/S"):  # Kurs range/rate: nothing docking
        return Profile("rare", base=0, amp=0, decimals=dec, per_day=0.1)
    if units == "PCT":
        return Profile("wave", interval_s=30, base=30, amp=10, sd=0.01, decimals=dec)
    if units == "G":
        return Profile("wave", interval_s=60, base=0.01, amp=0.002, sd=0.003, decimals=dec)
    if units == "AMP":
        return Profile("wave", interval_s=60, base=0.6, amp=0.02, sd=0.006, decimals=dec)
    if units == "DEGF":
        return Profile("wave", interval_s=60, base=80, amp=1.5, sd=0.05, decimals=dec)
    if units in ("PSIA", "PSI") or "pressure" in desc:
        base = (
            3.05
            if "ppo2" in desc
            else 11.4
            if "ppn2" in desc
            else 0.06
            if "ppco2" in desc
            else 14.65
        )
        return Profile("wave", interval_s=60, base=base, amp=0.01, sd=0.006, decimals=dec)
    if "drive voltage" in desc:
        return Profile("wave", interval_s=30, base=155, amp=5, sd=0.05, decimals=dec)
    if "drive current" in desc:
        return Profile("wave", interval_s=30, base=60, amp=40, sd=0.05, decimals=dec)
    if "voltage" in desc:
        return Profile("wave", interval_s=60, base=124, amp=0.3, sd=0.04, decimals=dec)
    if "current" in desc:
        return Profile("wave", interval_s=60, base=1.5, amp=0.5, sd=0.01, decimals=dec)
    if "quantity" in desc:
        return Profile(
            "wave", interval_s=120, base=55, amp=0.3, period_s=DAY_S, sd=0.03, decimals=dec
        )
    if "flowrate" in desc:
        return Profile("wave", interval_s=60, base=1450, amp=20, sd=1.0, decimals=dec)
    if "kpa" in desc:
        return Profile("wave", interval_s=60, base=2150, amp=15, sd=1.0, decimals=dec)
    if "temp" in desc:
        base = 3.5 if "deg c" in desc else 45 if "fluid" in desc else 72
        return Profile("wave", interval_s=60, base=base, amp=1.0, sd=0.03, decimals=dec)
    return Profile("wave", interval_s=60, base=50, amp=1, sd=0.03, decimals=dec)
