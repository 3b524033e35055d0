"""Orders: totals and exports."""

import subprocess


def order_total(prices: list[float], discount: float = 0.0) -> float:
    return round(sum(prices) * (1 - discount), 2)


def export_orders(path: str) -> None:
    subprocess.run(["tar", "czf", "orders.tgz", path], check=True)
