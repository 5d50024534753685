"""The Mosquitto configuration openmeg writes: hashes, ACL and settings, checked as text and
against the real broker."""

import base64
import hashlib
import subprocess
from pathlib import Path

from openmeg.protocols.broker_config import (
    BrokerOptions,
    acl_file,
    mosquitto_conf,
    password_hash,
)
from tests.services import TEST_USER, Broker


def test_password_hash_is_mosquittos_pbkdf2_sha512() -> None:
    salt = bytes(range(12))
    text = password_hash("s3cret", salt)
    _, kind, rounds, salt_b64, digest_b64 = text.split("$")
    assert (kind, rounds) == ("7", "101")
    assert base64.b64decode(salt_b64) == salt
    assert base64.b64decode(digest_b64) == hashlib.pbkdf2_hmac("sha512", b"s3cret", salt, 101)
    assert password_hash("s3cret") != password_hash("s3cret")  # a fresh salt each time


def test_the_acl_gives_each_component_its_topics_only() -> None:
    acl = acl_file("S", {"tester": ["meg/#"]})
    blocks = {b.split("\n")[1]: b for b in acl.split("\n\n")[1:]}
    assert blocks["user openmeg-S-market"].splitlines()[2:] == [
        "topic read meg/S/#",
        "topic write meg/S/market/prices",
        "topic write meg/S/operation/alarms/+",
    ]
    assert blocks["user openmeg-S-operator"].splitlines()[2:] == [
        "topic read meg/S/#",
        "topic write meg/S/command/+/+",
        "topic write meg/S/operation/devices/add",
    ]
    assert "topic deny meg/S/customer/+/readings" in blocks["user openmeg-S-feeder"]
    assert acl.endswith("\nuser tester\ntopic readwrite meg/#\n")
    assert "pattern" not in acl and "anonymous" not in acl


def test_the_conf_refuses_anonymous_clients_and_keeps_queues_for_metering() -> None:
    conf = mosquitto_conf(
        "S",
        Path("/b"),
        certfile=Path("/b/tls/server.pem"),
        keyfile=Path("/b/tls/server.key"),
        options=BrokerOptions(),
    ).splitlines()
    for line in (
        "allow_anonymous false",
        "password_file /b/passwd",
        "acl_file /b/acl",
        "persistence true",
        "max_queued_messages 1000000",
        "max_queued_bytes 1073741824",
        "persistent_client_expiration 30d",
        "listener 8883",
        "certfile /b/tls/server.pem",
    ):
        assert line in conf
    assert not any(line.startswith("listener 1883") for line in conf)
    plain = mosquitto_conf(
        "S",
        Path("/b"),
        certfile=Path("c"),
        keyfile=Path("k"),
        options=BrokerOptions(plain_port=1884),
    )
    assert plain.endswith("listener 1884 127.0.0.1\n")


def test_the_real_broker_takes_each_generated_password(broker: Broker) -> None:
    for user, password in [
        *((f"openmeg-demo-{c}", p) for c, p in broker.passwords.items()),
        (TEST_USER, broker.test_password),
    ]:
        done = subprocess.run(
            [
                "mosquitto_pub",
                "-h",
                broker.host,
                "-p",
                str(broker.port),
                "-u",
                user,
                "-P",
                password,
                "-t",
                "meg/demo/operation/alarms/x",
                "-m",
                "{}",
                "-q",
                "1",
            ],
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert done.returncode == 0, (user, done.stderr)
    refused = subprocess.run(
        ["mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-t", "meg/x", "-m", "{}"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert refused.returncode != 0 and "not authorised" in refused.stderr
