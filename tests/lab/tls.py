"""Throwaway certificate authorities for tests, made with the openssl CLI (the machine's, as the
lab's database certificate is): a stand-in for Cloudflare's Origin CA (the certificate the stack
makes for the hosts) and for its origin-pull CA (the client certificate Cloudflare's edge shows)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], capture_output=True, check=True, timeout=60)


@dataclass(frozen=True)
class Pem:
    cert: Path
    key: Path

    def bundle(self) -> str:
        """Certificate then key, as the stack output `origin_tls` gives them to the deploy."""
        return self.cert.read_text() + self.key.read_text()


def make_ca(folder: Path, name: str) -> Pem:
    folder.mkdir(parents=True, exist_ok=True)
    ca = Pem(folder / f"{name}-ca.pem", folder / f"{name}-ca.key")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
             "-subj", f"/CN={name} test CA", "-keyout", str(ca.key), "-out", str(ca.cert))
    return ca


def issue(ca: Pem, folder: Path, name: str, dns_names: tuple[str, ...] = (), client: bool = False) -> Pem:
    """A leaf signed by `ca`: a server certificate for `dns_names` (IP addresses too), or a client certificate."""
    leaf = Pem(folder / f"{name}.pem", folder / f"{name}.key")
    csr = folder / f"{name}.csr"
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-subj", f"/CN={dns_names[0] if dns_names else name}", "-keyout", str(leaf.key), "-out", str(csr))
    extensions = folder / f"{name}.ext"
    usage = "clientAuth" if client else "serverAuth"
    san = f"subjectAltName={','.join(_san(n) for n in dns_names)}\n" if dns_names else ""
    extensions.write_text(f"basicConstraints=CA:FALSE\nextendedKeyUsage={usage}\n{san}")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey", str(ca.key), "-CAcreateserial",
             "-days", "2", "-extfile", str(extensions), "-out", str(leaf.cert))
    return leaf


def _san(name: str) -> str:
    """An IP address is named as one (a client checks IP SANs against an address, never DNS ones)."""
    import ipaddress

    try:
        return f"IP:{ipaddress.ip_address(name)}"
    except ValueError:
        return f"DNS:{name}"


def fingerprint(cert_pem: str) -> str:
    """SHA-256 of a PEM certificate's DER (what a TLS client sees), hex."""
    import hashlib
    import ssl

    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(cert_pem)).hexdigest()
