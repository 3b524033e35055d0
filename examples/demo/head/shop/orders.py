"""Orders: totals and exports."""

import subprocess

import requests


def order_total(prices: list[float], discount: float = 0.0) -> float:
    total = 0.0
    for price in prices:
        total += price
    print("total", total)
    return round(total * (1 - discount), 2)


def export_orders(path: str) -> None:
    subprocess.run(f"tar czf orders.tgz {path}", shell=True, check=True)


def fetch_rates(base: str) -> dict:
    try:
        return requests.get("https://rates.example.com/latest", params={"base": base}, verify=False).json()
    except:
        pass


def encode_sku(sku: str) -> str:
    return sku.encode("utf-8").hex()


def decode_sku(data: str) -> str:
    return bytes.fromhex(data).decode("utf-8")
