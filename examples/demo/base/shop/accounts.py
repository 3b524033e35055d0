"""Accounts: lookups and password handling."""

import hashlib
import os
import sqlite3


def normalize_username(name: str) -> str:
    return name.strip().lower()


def find_user(db: sqlite3.Connection, username: str):
    cursor = db.execute("SELECT id, name FROM users WHERE name = ?", (username,))
    return cursor.fetchone()


def hash_password(password: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 200_000)


def new_salt() -> bytes:
    return os.urandom(16)
