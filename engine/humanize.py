"""Sizes and durations the way docker prints them (go-units), shared by the CLI and the engine."""

from __future__ import annotations


def human_size(size: float, binary: bool = False, precision: int = 3) -> str:
    """docker's units.HumanSizeWithPrecision (decimal; its lists use 3 significant digits, units.HumanSize
    itself 4) or BytesSize (binary)."""
    base = 1024.0 if binary else 1000.0
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"] if binary else ["B", "kB", "MB", "GB", "TB", "PB"]
    value = float(size)
    unit = 0
    while value >= base and unit < len(units) - 1:
        value /= base
        unit += 1
    return f"{value:.4g}{units[unit]}" if binary else f"{float(f'{value:.{precision}g}'):g}{units[unit]}"


def human_duration(seconds: float) -> str:
    """docker's units.HumanDuration: "Less than a second", "3 minutes", "About an hour"..."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(s / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"
