"""The wealth products a customer can ask about (``scenes/products.yaml``), each rated R1–R5.

A product's expected return is a text about the past, never a promise; suitability against a
customer's level is ``domain.risk.suitability``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from vbank.domain import DomainError
from vbank.domain.flows import Text
from vbank.domain.risk import ProductRisk

PRODUCTS_PATH = Path(__file__).resolve().parents[2] / "scenes" / "products.yaml"
ID = re.compile(r"^[a-z][a-z0-9_]*$")
KEYS = {"id", "name", "risk", "description", "expected_return"}


class ProductFileError(DomainError):
    """A products file that cannot be used: names the file, the product and what is wrong."""


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    name: Text
    risk: ProductRisk
    description: Text
    #: a range seen in the past, worded as no promise
    expected_return: Text


def parse_products(node: Any, source: str) -> dict[str, Product]:
    """Read and check the products of a products file, by id, in file order."""
    if not isinstance(node, Mapping) or set(node) != {"products"}:
        raise ProductFileError(f"{source}: must have exactly one key, products")
    raw = node["products"]
    if not isinstance(raw, list) or not raw:
        raise ProductFileError(f"{source}: products must be a non-empty list")
    products: dict[str, Product] = {}
    for i, item in enumerate(raw):
        where = f"{source}: products[{i}]"
        if not isinstance(item, Mapping):
            raise ProductFileError(f"{where} must be a mapping")
        if isinstance(item.get("id"), str):
            where += f" ({item['id']})"
        missing = sorted(KEYS - set(item))
        if missing:
            raise ProductFileError(f"{where} needs {missing[0]}")
        unknown = sorted(set(item) - KEYS)
        if unknown:
            raise ProductFileError(f"{where}: unknown key {unknown[0]!r}")
        pid = item["id"]
        if not isinstance(pid, str) or not ID.match(pid):
            raise ProductFileError(f"{where}: id must be an id like daily_cash")
        if pid in products:
            raise ProductFileError(f"{where}: product {pid} appears twice")
        if item["risk"] not in ProductRisk.__members__:
            raise ProductFileError(f"{where}: risk must be one of R1, R2, R3, R4, R5")
        products[pid] = Product(pid, _text(item, "name", where), ProductRisk(item["risk"]),
                                _text(item, "description", where),
                                _text(item, "expected_return", where))
    return products


def _text(item: Mapping[str, Any], key: str, where: str) -> Text:
    value = item[key]
    if not isinstance(value, Mapping) or set(value) != {"en", "zh"} or not all(
            isinstance(value[lang], str) and value[lang].strip() for lang in ("en", "zh")):
        raise ProductFileError(f"{where}: {key} must give en and zh")
    return Text(value["en"].strip(), value["zh"].strip())


@cache
def load_products(path: Path = PRODUCTS_PATH) -> Mapping[str, Product]:
    """The branch's products by id, in file order (read once per process; read-only)."""
    try:
        node = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProductFileError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ProductFileError(f"{path}: not YAML: {exc}") from exc
    return MappingProxyType(parse_products(node, str(path)))
