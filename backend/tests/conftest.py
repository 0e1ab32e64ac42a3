import contextlib
from collections.abc import Iterator

import pytest

from tests.support import (
    Api,
    RunNames,
    Server,
    WorkerRole,
    migrated_run,
    register,
)

# Small limits so the limit tests stay quick; the rest of the suite stays well under them.
MAX_MESSAGE_CHARS = 500
HISTORY_MAX_CHARS = 1000
USER_MESSAGES_PER_MINUTE = 6
SESSION_CLEANUP_INTERVAL_SECONDS = 1


@pytest.fixture(scope="session")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunNames]:
    """This run's own database (migrated), Redis prefix and queue names; all removed after."""
    with migrated_run(RunNames()) as test_run:
        yield test_run


@pytest.fixture(scope="session")
def worker(run: RunNames) -> Iterator[WorkerRole]:
    role = WorkerRole(run)
    yield role
    with contextlib.suppress(Exception):
        role.delete_queues()
    role.close()


@pytest.fixture(scope="session")
def logs(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def server(run: RunNames, worker: WorkerRole, logs) -> Iterator[Server]:
    backend = Server(
        run.env(
            MAX_MESSAGE_CHARS=MAX_MESSAGE_CHARS,
            HISTORY_MAX_CHARS=HISTORY_MAX_CHARS,
            USER_MESSAGES_PER_MINUTE=USER_MESSAGES_PER_MINUTE,
            SESSION_CLEANUP_INTERVAL_SECONDS=SESSION_CLEANUP_INTERVAL_SECONDS,
            # The suite signs up hundreds of users from 127.0.0.1; test_signin has its own server.
            SIGNUPS_PER_ADDRESS_PER_HOUR=0,
        ),
        logs,
    )
    try:
        yield backend.wait_ready()
    finally:
        backend.stop()


@pytest.fixture(scope="session")
def admin(server: Server) -> Api:
    """The first account of the run's database, made before any other."""
    return register(server.url)


@pytest.fixture
def alice(server: Server, admin: Api) -> Api:
    return register(server.url)


@pytest.fixture
def bob(server: Server, admin: Api) -> Api:
    return register(server.url)


@pytest.fixture
def anon(server: Server) -> Api:
    return Api(server.url)
