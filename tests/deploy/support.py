"""Shared helpers of the deployment checks: paths, settings read from the services' source,
the compose file as docker-compose resolves it."""

import ast
import os
import re
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = Path(__file__).resolve().parent / ".venv" / "bin"
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
README = ROOT / "README.md"
SETTINGS_MODULES = {
    "backend": ROOT / "backend" / "app" / "core" / "config.py",
    "gemini-client": ROOT / "gemini-client" / "src" / "core" / "config.py",
}
STANDIN_DIALS = ROOT / "gemini-client" / "standin" / "dials.py"
MISSING = object()  # a setting without a default, or with one that is not a literal


def settings_fields(path: Path) -> dict[str, object]:
    """Environment name -> literal default (or MISSING) of the BaseSettings class in `path`."""
    tree = ast.parse(path.read_text())
    fields: dict[str, object] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        if not any(
            getattr(base, "id", getattr(base, "attr", "")) == "BaseSettings" for base in node.bases
        ):
            continue
        for item in node.body:
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                fields[item.target.id.upper()] = _literal_default(item.value)
    return fields


def _literal_default(value: ast.expr | None) -> object:
    if value is None:
        return MISSING
    if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "Field":
        if value.args:
            value = value.args[0]
        else:
            default = [k.value for k in value.keywords if k.arg == "default"]
            if not default:
                return MISSING
            value = default[0]
    try:
        return ast.literal_eval(value)
    except ValueError:
        return MISSING


def all_settings() -> dict[str, dict[str, object]]:
    return {service: settings_fields(path) for service, path in SETTINGS_MODULES.items()}


def standin_dials() -> set[str]:
    return set(re.findall(r"\"(STANDIN_[A-Z0-9_]+)\"", STANDIN_DIALS.read_text()))


def env_example() -> dict[str, str]:
    """Variables of .env.example, commented-out ones (`# NAME=value`) included."""
    found = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            found[match.group(1)] = match.group(2).strip()
    return found


def env_example_active() -> dict[str, str]:
    return {
        k: v
        for k, v in env_example().items()
        if re.search(rf"^{k}=", ENV_EXAMPLE.read_text(), re.M)
    }


def compose_variables() -> dict[str, list[tuple[str, str]]]:
    """Name -> [(operator, default-or-message)] of every ${...} in docker-compose.yml."""
    found: dict[str, list[tuple[str, str]]] = {}
    for name, op, rest in re.findall(
        r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)(?:(:?[-?])([^}]*))?\}", COMPOSE_FILE.read_text()
    ):
        found.setdefault(name, []).append((op, rest))
    return found


def compose_config(env_file: Path = ENV_EXAMPLE) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker-compose", "-f", str(COMPOSE_FILE), "--env-file", str(env_file), "config"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "COMPOSE_PROFILES": ""},
    )


def resolved_compose() -> dict:
    done = compose_config()
    if done.returncode:
        raise AssertionError(f"docker-compose config failed:\n{done.stderr}")
    return yaml.safe_load(done.stdout)


def same_value(code_default: object, text: str) -> bool:
    """Whether a setting's default in code and a value written in an env file agree."""
    if isinstance(code_default, bool):
        return text.lower() == str(code_default).lower()
    if isinstance(code_default, (int, float)):
        try:
            return float(text) == float(code_default)
        except ValueError:
            return False
    if isinstance(code_default, dict):  # parsed from a string; only the empty one is a default
        return not code_default and not text.strip()
    if isinstance(code_default, list):
        return [p.strip() for p in text.split(",") if p.strip()] == [str(v) for v in code_default]
    return text == str(code_default)
