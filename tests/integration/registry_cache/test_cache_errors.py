"""The cache's error answers on every registry route, side by side with Debian's docker-registry (distribution).

Reads are compared with the plain upstream registry holding the same image; writes with a distribution proxy
of it (pull-only, as the cache is), never with the plain registry (it would accept them). HEAD answers carry
no body, so for HEAD only the status and headers are compared. Where the cache deliberately answers otherwise,
`CACHE_ONLY` says what distribution answers and why the cache does not.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from cache_client import CELL, STAGER, stage, stored_files

from tests.support.cache_server import CacheServer
from tests.support.oci_images import OCI_MANIFEST, OciImage
from tests.support.upstream_registry import REGISTRY_BIN, UpstreamRegistry, free_port, wait_listening

REPO = "test/busybox"
ZERO = "sha256:" + "0" * 64
# The spec's error-code table, the legacy TAG_INVALID it names, and distribution's PAGINATION_NUMBER_INVALID.
SPEC_CODES = {"BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID", "MANIFEST_BLOB_UNKNOWN",
              "MANIFEST_INVALID", "MANIFEST_UNKNOWN", "NAME_INVALID", "NAME_UNKNOWN", "SIZE_INVALID", "UNAUTHORIZED",
              "DENIED", "UNSUPPORTED", "TOOMANYREQUESTS", "TAG_INVALID", "PAGINATION_NUMBER_INVALID"}
# The codes the v1.0.1 conformance suite accepts in a 400 body.
SUITE_CODES = SPEC_CODES - {"TOOMANYREQUESTS", "PAGINATION_NUMBER_INVALID"} | {"MANIFEST_UNVERIFIED"}


@dataclass(frozen=True)
class Answer:
    status: int
    code: str | None  # first error code of an OCI JSON body; None for any other body
    body: bytes
    headers: requests.structures.CaseInsensitiveDict


@dataclass(frozen=True)
class Lab:
    cache: CacheServer
    image: OciImage
    upstream: str  # plain distribution holding the image: reads only
    proxy: str  # distribution proxy of it: the pull-only reference for writes

    def path(self, template: str) -> str:
        config = json.loads(self.image.manifests[self.image.digest])["config"]["digest"]
        return template.format(repo=REPO, digest=self.image.digest, layer=self.image.layer_digests[0],
                               config=config, zero=ZERO)

    def body(self, key: str | None) -> bytes | None:
        """Request bodies by name; "manifest" is the staged image's exact manifest."""
        if key is None:
            return None
        return self.image.manifests[self.image.digest] if key == "manifest" else key.encode()


def ask(base: str, method: str, path: str, auth: tuple[str, str] | None = None, headers: dict | None = None,
        body: bytes | None = None) -> Answer:
    resp = requests.request(method, base + path, auth=auth, headers=headers or {}, data=body, timeout=30)
    code = None
    if resp.status_code >= 400 and resp.content and resp.headers.get("Content-Type", "").startswith("application/json"):
        code = resp.json()["errors"][0]["code"]
    return Answer(resp.status_code, code, resp.content, resp.headers)


def assert_registry_error(answer: Answer, method: str) -> None:
    """An error the cache answers: spec code in an OCI JSON body (none for HEAD), API version header."""
    assert answer.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    assert answer.headers["Content-Type"].startswith("application/json")
    if method == "HEAD":
        assert answer.body == b""
    else:
        assert answer.code in SPEC_CODES, answer.body


@pytest.fixture(scope="module")
def distribution_proxy(tmp_path_factory: pytest.TempPathFactory, upstream_registry: UpstreamRegistry) -> Iterator[str]:
    """Debian's docker-registry as a pull-through proxy of the upstream (refuses every push with 405)."""
    workdir = tmp_path_factory.mktemp("distribution-proxy")
    port = free_port()
    config = workdir / "config.yml"
    config.write_text("version: 0.1\nlog: {level: info, fields: {service: proxy}}\n"
                      f"storage: {{filesystem: {{rootdirectory: {workdir / 'data'}}}}}\n"
                      f"http: {{addr: '127.0.0.1:{port}', secret: trellis-test}}\n"
                      f"proxy: {{remoteurl: '{upstream_registry.url}'}}\n")
    with open(workdir / "registry.log", "ab") as log:
        proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        wait_listening(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def lab(cache: CacheServer, upstream_registry: UpstreamRegistry, distribution_proxy: str,
        oci_busybox_layout: OciImage) -> Lab:
    resp = stage(cache, f"{upstream_registry.host}/{REPO}:v1")
    assert resp.status_code == 200, resp.text
    return Lab(cache, oci_busybox_layout, upstream_registry.url, distribution_proxy)


OCI = {"Accept": OCI_MANIFEST}
# (method, path, request headers, body): answered with the same status by distribution and the cache, and with
# the same error code wherever distribution's body is OCI JSON (its router answers unknown URL shapes with a
# plain-text "404 page not found"; the cache answers those in OCI JSON).
SAME_READS = [
    ("{m}", "/v2/{repo}/manifests/v1", OCI, None),
    ("{m}", "/v2/{repo}/manifests/{digest}", OCI, None),
    ("{m}", "/v2/{repo}/manifests/nope", OCI, None),
    ("{m}", "/v2/{repo}/manifests/.INVALID_MANIFEST_NAME", OCI, None),  # the conformance suite's missing manifest
    ("{m}", "/v2/{repo}/manifests/bad%20tag", OCI, None),
    ("{m}", "/v2/{repo}/manifests/" + "a" * 129, OCI, None),
    ("{m}", "/v2/{repo}/manifests/{zero}", OCI, None),
    ("{m}", "/v2/{repo}/manifests/sha512:" + "0" * 128, OCI, None),
    ("{m}", "/v2/{repo}/manifests/v1", {"Accept": "application/vnd.docker.distribution.manifest.v2+json"}, None),
    ("{m}", "/v2/nobody/here/manifests/v1", OCI, None),
    ("{m}", "/v2/{repo}/blobs/{layer}", None, None),
    ("{m}", "/v2/{repo}/blobs/{zero}", None, None),
    ("{m}", "/v2/{repo}/blobs/sha256:abc", None, None),
    ("{m}", "/v2/{repo}/blobs/sha256:" + "0" * 65, None, None),
    ("{m}", "/v2/{repo}/blobs/md5:0123", None, None),
    ("{m}", "/v2/{repo}/blobs/sha384:" + "0" * 96, None, None),
    ("{m}", "/v2/{repo}/blobs/sha512:" + "0" * 128, None, None),
    ("{m}", "/v2/{repo}/blobs/notadigest", None, None),
    ("{m}", "/v2/{repo}/blobs/SHA256:" + "0" * 64, None, None),
    ("{m}", "/v2/nobody/here/blobs/{layer}", None, None),
    ("{m}", "/v2/{repo}/blobs/uploads/", None, None),
    ("{m}", "/v2/{repo}/referrers/{digest}", None, None),  # no referrers API: 404 sends clients to the tag schema
    ("{m}", "/v2/{repo}/", None, None),
    ("GET", "/v2/nobody/here/tags/list", None, None),
]
SAME_WRITES = [
    ("PUT", "/v2/{repo}/manifests/v2", {"Content-Type": OCI_MANIFEST}, "blablabla"),
    ("PUT", "/v2/{repo}/manifests/v2", {"Content-Type": OCI_MANIFEST}, "[1]"),
    ("PUT", "/v2/{repo}/manifests/v2", {"Content-Type": "text/plain"}, '{"schemaVersion": 2}'),
    ("PUT", "/v2/{repo}/manifests/v2", {"Content-Type": OCI_MANIFEST}, ""),
    ("PUT", "/v2/{repo}/manifests/{zero}", {"Content-Type": OCI_MANIFEST}, "manifest"),  # body has another digest
    ("PUT", "/v2/{repo}/manifests/sha512:" + "0" * 128, {"Content-Type": OCI_MANIFEST}, "manifest"),
    ("DELETE", "/v2/{repo}/blobs/sha256:abc", None, None),
    ("PUT", "/v2/{repo}/blobs/uploads/", None, None),
    ("POST", "/v2/{repo}/manifests/v1", None, None),
    ("PATCH", "/v2/{repo}/blobs/{layer}", None, None),
    ("PUT", "/v2/{repo}/tags/list", None, None),
]


def expand(cases: list[tuple]) -> list[tuple]:
    """Each "{m}" case once as GET and once as HEAD."""
    return [(m, *rest) for method, *rest in cases for m in (("GET", "HEAD") if method == "{m}" else (method,))]


def case_id(case: tuple) -> str:
    return f"{case[0]} {case[1]}" + (f" [{case[3][:12]}]" if case[3] else "")


@pytest.mark.parametrize("case", expand(SAME_READS) + SAME_WRITES, ids=case_id)
def test_answers_like_distribution(lab: Lab, case: tuple) -> None:
    method, template, headers, body = case
    path, data = lab.path(template), lab.body(body)
    reference = lab.upstream if method in ("GET", "HEAD") else lab.proxy
    theirs = ask(reference, method, path, headers=headers, body=data)
    ours = ask(lab.cache.url, method, path, CELL, headers, data)
    assert ours.status == theirs.status, (ours.body, theirs.body)
    if ours.status >= 400:
        assert_registry_error(ours, method)
        if theirs.code is not None:
            assert ours.code == theirs.code, (ours.body, theirs.body)
    if method == "HEAD":
        assert ours.body == theirs.body == b""
    if ours.status == 200:
        assert ours.headers.get("Docker-Content-Digest") == theirs.headers.get("Docker-Content-Digest")
        assert ours.body == theirs.body


# (method, path, user, headers, body, status, code, distribution's answer and why the cache differs)
CACHE_ONLY = [
    ("{m}", "/v2/{repo}/manifests/sha256:abc", CELL, None, None, 404, "MANIFEST_UNKNOWN",
     "500 UNKNOWN: distribution takes an unparsable digest for a tag and fails to look it up"),
    ("{m}", "/v2/{repo}/manifests/sha256:totallywrong", CELL, None, None, 404, "MANIFEST_UNKNOWN", "500 UNKNOWN"),
    ("{m}", "/v2/{repo}/manifests/md5:" + "0" * 32, CELL, None, None, 404, "MANIFEST_UNKNOWN", "500 UNKNOWN"),
    ("{m}", "/v2/{repo}/manifests/{config}", CELL, None, None, 404, "MANIFEST_UNKNOWN",
     "500 UNKNOWN: distribution finds the blob and fails to read it as a manifest"),
    ("{m}", "/v2/Bad_Name/manifests/v1", CELL, None, None, 400, "NAME_INVALID",
     "404 text/plain: no route matches; the spec's table has NAME_INVALID for it"),
    ("{m}", "/v2/" + "a/" * 127 + "ab/manifests/v1", CELL, None, None, 400, "NAME_INVALID",
     "500 UNKNOWN for a 256-character name"),
    ("{m}", "/v2/Bad_Name/blobs/{zero}", CELL, None, None, 400, "NAME_INVALID", "404 text/plain"),
    ("{m}", "/v2/" + "a/" * 127 + "ab/blobs/{zero}", CELL, None, None, 400, "NAME_INVALID", "500 UNKNOWN"),
    ("{m}", "/v2/Bad_Name/tags/list", CELL, None, None, 400, "NAME_INVALID", "404 text/plain"),
    ("{m}", "/v2/{repo}/tags/list?n=-1", CELL, None, None, 400, "PAGINATION_NUMBER_INVALID",
     "200 (HEAD: 405): distribution 2.8 ignores n on tags/list; distribution 3 answers 400 "
     "PAGINATION_NUMBER_INVALID"),
    ("{m}", "/v2/{repo}/tags/list?n=abc", CELL, None, None, 400, "PAGINATION_NUMBER_INVALID", "200 (HEAD: 405)"),
    ("GET", "/v2/{repo}/tags/list?n=0", CELL, None, None, 200, None,
     "200 with every tag (2.8 ignores n); the spec wants an empty list for n=0"),
    ("HEAD", "/v2/{repo}/tags/list", CELL, None, None, 200, None,
     "405: distribution routes no HEAD for tags/list; RFC 9110 wants HEAD wherever GET is served"),
    ("HEAD", "/v2/nobody/here/tags/list", CELL, None, None, 404, None, "405"),
    ("{m}", "/v2/_catalog", CELL, None, None, 404, "UNSUPPORTED", "200 (HEAD: 405): the catalog is no OCI endpoint"),
    ("{m}", "/v2/{repo}/blobs/uploads/some-upload", CELL, None, None, 404, "BLOB_UPLOAD_UNKNOWN",
     "404 BLOB_UPLOAD_INVALID (the location lacks distribution's _state); the cache never starts an upload"),
    ("PATCH", "/v2/{repo}/blobs/uploads/some-upload", CELL, None, None, 404, "BLOB_UPLOAD_UNKNOWN",
     "404 BLOB_UPLOAD_INVALID"),
    ("PUT", "/v2/{repo}/blobs/uploads/some-upload?digest={zero}", CELL, None, None, 404, "BLOB_UPLOAD_UNKNOWN",
     "404 BLOB_UPLOAD_INVALID"),
    ("DELETE", "/v2/{repo}/blobs/uploads/some-upload", CELL, None, None, 404, "BLOB_UPLOAD_UNKNOWN",
     "404 BLOB_UPLOAD_INVALID"),
    ("PUT", "/v2/{repo}/manifests/sha256:totallywrong", CELL, {"Content-Type": OCI_MANIFEST}, "blablabla", 400,
     "DIGEST_INVALID", "400 MANIFEST_INVALID: distribution takes the reference for a tag and reads the body first"),
    ("PUT", "/v2/{repo}/manifests/sha256:abc", CELL, {"Content-Type": OCI_MANIFEST}, "manifest", 400,
     "DIGEST_INVALID", "405 UNSUPPORTED"),
    ("PUT", "/v2/{repo}/manifests/.bad", CELL, {"Content-Type": OCI_MANIFEST}, "manifest", 400, "TAG_INVALID",
     "404 text/plain"),
    ("PUT", "/v2/Bad_Name/manifests/v1", CELL, {"Content-Type": OCI_MANIFEST}, "manifest", 400, "NAME_INVALID",
     "404 text/plain"),
    ("PUT", "/v2/{repo}/manifests/v1", CELL, {"Content-Type": OCI_MANIFEST}, '{"schemaVersion": 1}', 400,
     "MANIFEST_INVALID", "405 UNSUPPORTED: the proxy only unmarshals; the cache reads schemaVersion 2 only"),
    ("PUT", "/v2/{repo}/manifests/v2", CELL, {"Content-Type": OCI_MANIFEST}, "manifest", 403, "DENIED",
     "405 UNSUPPORTED: the proxy has no users; cell lacks the stage permission"),
    ("PUT", "/v2/{repo}/manifests/{digest}", CELL, {"Content-Type": OCI_MANIFEST}, "manifest", 403, "DENIED",
     "405 UNSUPPORTED"),
    ("PUT", "/v2/{repo}/manifests/v2", STAGER, {"Content-Type": OCI_MANIFEST}, "manifest", 405, "UNSUPPORTED",
     "405 UNSUPPORTED (same): the stager is told to use POST /stage"),
    ("PUT", "/v2/nobody/here/manifests/v1", CELL, {"Content-Type": OCI_MANIFEST}, "manifest", 404, "NAME_UNKNOWN",
     "405 UNSUPPORTED: the cache holds no such repository"),
    ("DELETE", "/v2/{repo}/manifests/{digest}", CELL, None, None, 403, "DENIED", "405 UNSUPPORTED"),
    ("DELETE", "/v2/{repo}/manifests/v1", STAGER, None, None, 405, "UNSUPPORTED", "405 UNSUPPORTED (same)"),
    ("DELETE", "/v2/{repo}/manifests/.bad", CELL, None, None, 404, "MANIFEST_UNKNOWN", "404 text/plain"),
    ("DELETE", "/v2/{repo}/manifests/sha256:abc", CELL, None, None, 404, "MANIFEST_UNKNOWN", "405 UNSUPPORTED"),
    ("DELETE", "/v2/{repo}/blobs/{layer}", CELL, None, None, 403, "DENIED", "405 UNSUPPORTED"),
    ("DELETE", "/v2/{repo}/blobs/{layer}", STAGER, None, None, 405, "UNSUPPORTED", "405 UNSUPPORTED (same)"),
    ("DELETE", "/v2/{repo}/blobs/notadigest", CELL, None, None, 404, "BLOB_UNKNOWN", "404 text/plain"),
    ("DELETE", "/v2/nobody/here/blobs/{zero}", CELL, None, None, 404, "NAME_UNKNOWN", "405 UNSUPPORTED"),
    ("POST", "/v2/{repo}/blobs/uploads/", CELL, None, None, 403, "DENIED", "405 UNSUPPORTED"),
    ("POST", "/v2/{repo}/blobs/uploads/", STAGER, None, None, 405, "UNSUPPORTED", "405 UNSUPPORTED (same)"),
    ("POST", "/v2/{repo}/blobs/uploads/?digest=sha256:abc", CELL, None, None, 400, "DIGEST_INVALID",
     "405 UNSUPPORTED"),
    ("POST", "/v2/{repo}/blobs/uploads/?mount=sha256:abc&from={repo}", CELL, None, None, 400, "DIGEST_INVALID",
     "405 UNSUPPORTED"),
    ("POST", "/v2/{repo}/blobs/uploads/?mount={layer}&from=Bad_Name", CELL, None, None, 400, "NAME_INVALID",
     "405 UNSUPPORTED"),
    ("POST", "/v2/nobody/here/blobs/uploads/", CELL, None, None, 404, "NAME_UNKNOWN", "405 UNSUPPORTED"),
    ("POST", "/v2/Bad_Name/blobs/uploads/", CELL, None, None, 400, "NAME_INVALID", "404 text/plain"),
    ("PUT", "/v2/", CELL, None, None, 405, "UNSUPPORTED", "200: distribution's base route takes any method"),
    ("OPTIONS", "/v2/{repo}/manifests/v1", CELL, None, None, 405, "UNSUPPORTED", "200"),
    ("{m}", "/v2/{repo}/manifests/v1", None, None, None, 401, "UNAUTHORIZED",
     "the plain upstream has no auth; the cache is private"),
    ("PUT", "/v2/{repo}/manifests/v2", None, {"Content-Type": OCI_MANIFEST}, "blablabla", 401, "UNAUTHORIZED",
     "authentication comes before any check"),
]


def only_case_id(case: tuple) -> str:
    return f"{case[0]} {case[1]} as {case[2][0] if case[2] else 'anonymous'}" + (f" [{case[4][:12]}]" if case[4]
                                                                                 else "")


@pytest.mark.parametrize("case", expand(CACHE_ONLY), ids=only_case_id)
def test_answers_where_distribution_differs(lab: Lab, case: tuple) -> None:
    method, template, user, headers, body, status, code, _distribution = case
    ours = ask(lab.cache.url, method, lab.path(template), user, headers, lab.body(body))
    assert ours.status == status, ours.body
    if status >= 400:
        assert_registry_error(ours, method)
        if method != "HEAD":
            assert ours.code == code
    if status == 405:
        assert ours.headers["Allow"] == ("" if "/uploads/" in template else "GET, HEAD")
    if status == 401:
        assert ours.headers["WWW-Authenticate"].startswith(f'Bearer realm="{lab.cache.url}/token"')


@pytest.fixture(params=["cache", "distribution proxy"])
def target(request: pytest.FixtureRequest, lab: Lab) -> tuple[str, tuple[str, str] | None]:
    return (lab.cache.url, CELL) if request.param == "cache" else (lab.proxy, None)


def test_conformance_pull_specs(lab: Lab, target: tuple[str, tuple[str, str] | None]) -> None:
    """The pull category of the OCI conformance suite v1.0.1 with pre-seeded content, as its checks read."""
    base, auth = target
    config = lab.path("{config}")
    dummy = "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"  # sha256("hello world")
    for method in ("HEAD", "GET"):
        assert ask(base, method, f"/v2/{REPO}/blobs/{dummy}", auth).status == 404
        existing = ask(base, method, f"/v2/{REPO}/blobs/{config}", auth)
        assert existing.status == 200 and existing.headers["Docker-Content-Digest"] == config
        assert ask(base, method, f"/v2/{REPO}/manifests/.INVALID_MANIFEST_NAME", auth).status == 404
        for ref in (lab.image.digest, "v1"):
            found = ask(base, method, f"/v2/{REPO}/manifests/{ref}", auth, OCI)
            assert found.status == 200 and found.headers["Docker-Content-Digest"] == lab.image.digest
    refused = ask(base, "PUT", f"/v2/{REPO}/manifests/sha256:totallywrong", auth,
                  {"Content-Type": OCI_MANIFEST}, b"blablabla")
    assert refused.status in (400, 404)
    if refused.status == 400:
        assert refused.code in SUITE_CODES


def test_oversized_manifest_push_is_413(lab: Lab) -> None:
    big = b'{"schemaVersion": 2, "pad": "' + b"x" * (4 << 20) + b'"}'
    ours = ask(lab.cache.url, "PUT", f"/v2/{REPO}/manifests/v2", CELL, {"Content-Type": OCI_MANIFEST}, big)
    assert ours.status == 413 and ours.code == "MANIFEST_INVALID"


def test_unsatisfiable_range_says_the_size(lab: Lab) -> None:
    """Distribution answers 416 with the whole blob's Content-Length and a short body; the cache says the size."""
    layer = lab.path("{layer}")
    ours = ask(lab.cache.url, "GET", f"/v2/{REPO}/blobs/{layer}", CELL, {"Range": "bytes=99999999-"})
    assert ours.status == 416
    assert ours.headers["Content-Range"] == f"bytes */{lab.image.blobs[layer]}"


def skopeo(args: list[str], home: Path) -> subprocess.CompletedProcess:
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}  # skopeo must not find real credentials
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, env=env, timeout=120)


def test_skopeo_sees_registry_errors(lab: Lab, tmp_path: Path) -> None:
    before = stored_files(lab.cache.storage)
    creds = ["--creds", ":".join(CELL), "--tls-verify=false"]
    missing = skopeo(["inspect", "--raw", *creds, f"docker://{lab.cache.host}/{REPO}:nope"], tmp_path)
    assert missing.returncode != 0 and "manifest unknown" in missing.stderr
    source = f"oci:{lab.image.layout}:{lab.image.tag}"
    for user, repo, said in ((CELL, REPO, "denied"), (STAGER, REPO, "unsupported"), (CELL, "new/repo", "name unknown")):
        push = skopeo(["copy", "--dest-tls-verify=false", "--dest-creds", ":".join(user), source,
                       f"docker://{lab.cache.host}/{repo}:pushed"], tmp_path)
        assert push.returncode != 0 and said in push.stderr.lower(), push.stderr
    assert stored_files(lab.cache.storage) == before
    tags = requests.get(f"{lab.cache.url}/v2/{REPO}/tags/list", auth=CELL, timeout=10).json()["tags"]
    assert tags == ["v1"]


def test_pull_through_sends_no_malformed_reference_upstream(tmp_path_factory: pytest.TempPathFactory,
                                                            upstream_registry: UpstreamRegistry,
                                                            oci_busybox_layout: OciImage) -> None:
    server = CacheServer(tmp_path_factory.mktemp("pt-errors"), [upstream_registry.host],
                         pull_through=upstream_registry.host)
    refs = (".NOT_SENT_UPSTREAM", "sha256:notsentupstream", "sha512:" + "1" * 128)  # sent nowhere else either
    sha384 = "sha384:" + "2" * 96
    try:
        server.start()
        for ref in refs:
            for method in ("GET", "HEAD"):
                answer = ask(server.url, method, f"/v2/{REPO}/manifests/{ref}", CELL, OCI)
                assert (answer.status, answer.code) == (404, None if method == "HEAD" else "MANIFEST_UNKNOWN")
        assert ask(server.url, "GET", f"/v2/{REPO}/blobs/{sha384}", CELL).code == "BLOB_UNKNOWN"
        push = ask(server.url, "PUT", "/v2/unsent/repo/manifests/v1", CELL, {"Content-Type": OCI_MANIFEST},
                   oci_busybox_layout.manifests[oci_busybox_layout.digest])
        assert (push.status, push.code) == (403, "DENIED")  # with pull-through any name may exist upstream
    finally:
        server.stop()
    log = upstream_registry.log_path.read_text(errors="replace")
    assert not any(text in log for text in (*refs, sha384, "unsent/repo"))
