"""Locust scenario for dicom-api: the spec's developer flow, then a mix of DICOM uploads.

Every simulated user registers once (unique email), gets JWTs, creates a developer profile and
an API key, then uploads small (a generated 128x128 16-bit CT slice) and large files (the shared
``0002.DCM`` when present, else a generated 24-frame CT) with a random ``return_format``, and
now and then reads its activity summary. The server needs a monthly quota above the number of
uploads (``DICOM_API_MONTHLY_QUOTA``).

One machine, headless, with CSV output::

    locust -f loadtests/locustfile.py --headless -u 8 -r 2 -t 60s \\
        --host http://127.0.0.1:8080 --csv out/locust

A multi-host deployment: point ``--host`` at the load balancer in front of the instances (they
are stateless; quota and usage live in Postgres/Redis). When one locust process runs out of
client CPU (it uses one core), run a master and several workers, on as many machines as needed::

    locust -f loadtests/locustfile.py --master --headless -u 200 -r 20 -t 10m \\
        --expect-workers 4 --host https://dicom-api.example.internal --csv out/locust
    locust -f loadtests/locustfile.py --worker --master-host <master address>   # x4

Locust monkeypatches with gevent before importing this file: keep imports to pure computation
(pydicom, numpy) and locust itself.
"""

from __future__ import annotations

import random
import uuid

from locust import HttpUser, between, task

from loadtests.inputs import BenchInput, ct_series, sample_0002, small_ct

ENDPOINT = "/api/dicom/read/file/"
PASSWORD = "locust password 1234"
FORMATS = ("png", "jpeg", "gif")
SMALL: BenchInput = small_ct()
LARGE: BenchInput = sample_0002() or ct_series(frames=24, size=256, name="multiframe")


class Developer(HttpUser):
    """A developer integrating dicom-api: mostly small uploads, some large ones."""

    wait_time = between(0.05, 0.5)

    def on_start(self) -> None:
        """Register, log in, create a profile and an API key (once per simulated user)."""
        self.email = f"locust-{uuid.uuid4().hex[:16]}@example.com"
        credentials = {"email": self.email, "password": PASSWORD}
        self.client.post("/api/auth/register/", json=credentials, name="register")
        tokens = self.client.post("/api/token/", json=credentials, name="token").json()
        self.access, self.refresh = tokens["access"], tokens["refresh"]
        profile = {"purpose": "testing", "organization": "Locust"}
        self.client.post(
            "/api/developer/profiles/", json=profile, headers=self.bearer(), name="profile"
        )
        key = self.client.post(
            "/api-keys/", json={"name": "locust"}, headers=self.bearer(), name="api-key"
        ).json()
        self.api_key = key["key"]

    def bearer(self) -> dict[str, str]:
        """Authorization header for account endpoints."""
        return {"Authorization": f"Bearer {self.access}"}

    def upload(self, item: BenchInput, label: str) -> None:
        """POST one file with a random format; a 200 without ``Images`` counts as a failure."""
        fmt = random.choice(FORMATS)
        with self.client.post(
            ENDPOINT,
            files={"file": (item.filename, item.data, "application/dicom")},
            data={"return_format": fmt},
            headers={"Authorization": f"ApiKey {self.api_key}"},
            name=f"read {label} {fmt}",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")
            elif b'"Images"' not in response.content:
                response.failure("answer has no Images")

    @task(8)
    def small_upload(self) -> None:
        """A single 128x128 CT slice: the request-rate path."""
        self.upload(SMALL, "small")

    @task(2)
    def large_upload(self) -> None:
        """A multi-frame file: the throughput path."""
        self.upload(LARGE, "large")

    @task(1)
    def activity_summary(self) -> None:
        """Daily and monthly usage; refreshes the access token once it has expired."""
        path = "/api/developer/profiles/activity-summary/"
        with self.client.get(
            path, headers=self.bearer(), name="activity-summary", catch_response=True
        ) as response:
            if response.status_code == 401:
                response.success()  # an expired access token, not a server failure
                self.refresh_tokens()
                self.client.get(path, headers=self.bearer(), name="activity-summary")

    def refresh_tokens(self) -> None:
        """Rotate the refresh token for a new access token."""
        tokens = self.client.post(
            "/api/token/refresh/", json={"refresh": self.refresh}, name="token-refresh"
        ).json()
        self.access, self.refresh = tokens["access"], tokens["refresh"]
