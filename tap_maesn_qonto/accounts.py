"""The connected accounts one run reads, from any of the three ways to give them.

* ``account_key`` (with optional ``account_label`` and ``sandbox``): one account;
* ``accounts``: a list of ``{"label", "account_key", "sandbox"}``;
* ``accounts_file``: a JSON file holding that list, for when a secret manager
  writes a thousand keys that cannot live in ``meltano.yml`` (read once, never logged).

``shard_count`` / ``shard_index`` then keep the accounts whose label hashes
(SHA-256, stable across runs, machines and Python versions) to this shard, so
every shard gets a disjoint, stable part of the same list and an account's state
always lives under the same shard's state id.
"""

from __future__ import annotations

import hashlib
import json
import re
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

from tap_maesn_qonto.errors import InvalidConfigError

#: The ways to give the accounts; exactly one per config.
ACCOUNT_FORMS = ("account_key", "accounts", "accounts_file")
LABEL = re.compile(r"[A-Za-z0-9._-]{1,100}")
#: A label this long and this random is probably a key pasted in the wrong place.
KEY_LIKE = re.compile(r"[A-Za-z0-9_-]{32,}")


@dataclass(frozen=True)
class Account:
    """One connected company: a non-secret label and its secret account key."""

    label: str
    key: str = field(repr=False)
    sandbox: bool = False

    @property
    def target_system(self) -> str:
        return "qonto-sandbox" if self.sandbox else "qonto"


def shard_of(label: str, shard_count: int) -> int:
    """The shard an account belongs to: stable, unlike Python's ``hash``."""
    digest = hashlib.sha256(label.encode()).digest()
    return int.from_bytes(digest[:8], "big") % shard_count


def _entries(config: t.Mapping[str, t.Any]) -> list[t.Any]:
    """The raw account entries, from whichever form the config uses."""
    forms = [name for name in ACCOUNT_FORMS if config.get(name)]
    if len(forms) > 1:
        msg = (
            f"{' and '.join(forms)} are both set; give the accounts one way: account_key for "
            "one account, accounts (or accounts_file) for several"
        )
        raise InvalidConfigError(msg)
    if not forms:
        msg = "no account: set account_key, or accounts / accounts_file for several"
        raise InvalidConfigError(msg)
    if forms == ["account_key"]:
        return [
            {
                "label": config.get("account_label") or "default",
                "account_key": config["account_key"],
                "sandbox": config.get("sandbox", False),
            }
        ]
    if forms == ["accounts"]:
        return list(config["accounts"])
    return _read_accounts_file(str(config["accounts_file"]))


def _read_accounts_file(path: str) -> list[t.Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"cannot read accounts_file {path}: {exc.strerror}"
        raise InvalidConfigError(msg) from None
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as exc:  # the message quotes no content, only where
        msg = f"accounts_file {path} is not valid JSON ({exc.msg} at line {exc.lineno})"
        raise InvalidConfigError(msg) from None
    if isinstance(entries, dict) and isinstance(entries.get("accounts"), list):
        entries = entries["accounts"]
    if not isinstance(entries, list):
        msg = f'accounts_file {path} must hold a list of {{"label", "account_key"}} objects'
        raise InvalidConfigError(msg)
    return entries


def _account(entry: t.Any, position: int, secrets: set[str]) -> Account:
    where = f"account #{position + 1}"
    if not isinstance(entry, dict):
        msg = f'{where} is not an object with "label" and "account_key"'
        raise InvalidConfigError(msg)
    label, key, sandbox = entry.get("label"), entry.get("account_key"), entry.get("sandbox")
    if not isinstance(label, str) or not LABEL.fullmatch(label):
        msg = (
            f"{where} needs a label of letters, digits, '-', '_' or '.' (at most 100); it "
            "keys the state and is written to every record"
        )
        raise InvalidConfigError(msg)
    where = f"account {label!r}"
    if not isinstance(key, str) or not key:
        msg = f"{where} has no account_key (a string)"
        raise InvalidConfigError(msg)
    if label in secrets or label == key or KEY_LIKE.fullmatch(label):
        msg = (
            f"the label of account #{position + 1} looks like a key; labels are written "
            "to every record and to the state, so use a name such as 'acme-sas'"
        )
        raise InvalidConfigError(msg)
    if sandbox is not None and not isinstance(sandbox, bool):
        msg = f"{where}: sandbox must be true or false"
        raise InvalidConfigError(msg)
    return Account(label, key, bool(sandbox))


def all_accounts(config: t.Mapping[str, t.Any]) -> list[Account]:
    """Every configured account, checked; one :class:`InvalidConfigError` line if not."""
    entries = _entries(config)
    secrets = {str(config.get("api_key", ""))} | {
        str(e.get("account_key")) for e in entries if isinstance(e, dict)
    }
    accounts = [_account(entry, i, secrets) for i, entry in enumerate(entries)]
    seen: set[str] = set()
    for account in accounts:
        if account.label in seen:
            msg = f"the label {account.label!r} is given to two accounts; labels must be unique"
            raise InvalidConfigError(msg)
        seen.add(account.label)
    return accounts


def this_shard(config: t.Mapping[str, t.Any]) -> list[Account]:
    """The accounts of the configured shard, in configuration order."""
    try:
        count = int(config.get("shard_count", 1))
        index = int(config.get("shard_index", 0))
    except (TypeError, ValueError):  # "abc" from the environment, or null
        msg = "shard_count and shard_index must be whole numbers"
        raise InvalidConfigError(msg) from None
    if not 0 <= index < count:
        msg = f"shard_index {index} is outside 0..{count - 1} (shard_count {count})"
        raise InvalidConfigError(msg)
    return [a for a in all_accounts(config) if count == 1 or shard_of(a.label, count) == index]


def problems(config: t.Mapping[str, t.Any]) -> list[str]:
    """The accounts problem of ``config`` as a validation line, if any."""
    try:
        this_shard(config)
    except InvalidConfigError as exc:
        return [str(exc)]
    return []
