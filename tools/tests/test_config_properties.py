"""Properties of the configuration loader over generated live/ files (hypothesis).

Malformed env.toml, stack.toml and project.toml contents (wrong types for every key, unknown
keys, missing keys, bad account ids, regions and roles, bad and dangling "NNN_stack.output"
references, modules that do not exist, bad stack folder names, unicode and huge values, TOML
that does not parse, bytes that are not UTF-8) always end in a ConfigError listing every
problem, each naming the file, the key and what was expected; never another exception. Valid
generated environments load, as written.

The `--set NNN_stack.input=VALUE` overrides (apply_overrides) have their own properties:
malformed ones always end in a ConfigError naming "--set" and the override as given; valid ones
change exactly that input.

Defects these properties found (patterns that took a trailing newline or non-ASCII digits and
letters, names too long for a file name, lone braces, deep nesting, nan and inf, empty
references) are fixed; the tests at the end pin them.

Reproducible: derandomize=True (the same examples on every run), no example database.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tomllib
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stackrun.config import apply_overrides, load_environment, load_project
from stackrun.errors import ConfigError

SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


def _examples(default: int) -> int:
    """FLEET_PROPERTY_EXAMPLES=2000 runs longer (other examples, still reproducible)."""
    return int(os.environ.get("FLEET_PROPERTY_EXAMPLES") or default)


# ---- TOML text --------------------------------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_string(text: str) -> str:
    out = ['"']
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char < " " or char == "\x7f":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "".join(out) + '"'


def toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else toml_string(key)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    raise TypeError(type(value))


def toml_document(doc: dict[str, Any]) -> str:
    return "".join(f"{toml_key(k)} = {toml_value(v)}\n" for k, v in doc.items())


# Text TOML can hold (no surrogates), often nasty: unicode, RTL, NUL, traversal, injection.
NASTY = [
    "../../etc/passwd",
    "..",
    "%2e%2e%2f",
    "'; DROP TABLE devices;--",
    "Café 🛰️",
    "\u202eevil",
    "مرحبا",
    "a\x00b",
    "\ufeff",
    "${var.x}",
    "{project}",
    " ",
    "",
]
TEXT = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=20),
    st.sampled_from(NASTY),
    st.sampled_from([101, 5_000, 100_000]).map(lambda n: "x" * n),
)
KEYS = st.one_of(st.text(st.characters(codec="utf-8"), min_size=1, max_size=12), TEXT)
SCALARS = st.one_of(
    TEXT,
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.booleans(),
    st.datetimes(),
    st.datetimes(  # TOML offsets are hours and minutes
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
        )
    ),
    st.dates(),
    st.times(),
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=3),
    max_leaves=6,
)


@SETTINGS
@given(doc=st.dictionaries(KEYS, VALUES, max_size=5))
def test_the_toml_writer_of_these_tests_round_trips(doc):
    assert tomllib.loads(toml_document(doc)) == doc


# ---- the repository ---------------------------------------------------------------------------

ENV = Path("live/dev/env.toml")
PROJECT = Path("live/project.toml")
API_MODULE = 'variable "functions" {\n  type = any\n}\n'
BASE_PROJECT = {"project": {"name": "fleet", "default_region": "eu-west-1"}}
BASE_ENV = {"account_id": "111111111111", "deploy_role": "deploy"}
NET = {"module": "networkish", "inputs": {"name": "fleet-dev"}}
APP = {
    "module": "consumer",
    "dependencies": {"vpc_id": "010_net.vpc_id", "subnet_ids": "010_net.subnet_ids"},
}
NET_OUTPUTS = ("secret", "subnet_ids", "vpc_id")


def _prepare(repo) -> Path:
    """The conftest repository plus an `api` module and a function package."""
    repo.module("api", API_MODULE)
    repo.write("lambdas/hello/pyproject.toml", '[project]\nname = "hello"\n')
    return repo.root


def _write(root: Path, files: dict[Path, Any], *, stacks: bool = True) -> None:
    """Lay out live/ anew: project.toml, dev/env.toml, 010_net and 020_app (unless not
    `stacks`), then `files` (a document, TOML text or bytes per path) over them."""
    shutil.rmtree(root / "live", ignore_errors=True)
    layout: dict[Path, Any] = {PROJECT: BASE_PROJECT, ENV: BASE_ENV}
    if stacks:
        layout[Path("live/dev/010_net/stack.toml")] = NET
        layout[Path("live/dev/020_app/stack.toml")] = APP
    layout.update(files)
    for relative, content in layout.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        elif content is not None:  # None: the folder only
            path.write_text(toml_document(content), encoding="utf-8")


@dataclass
class Expect:
    """An issue that must be reported: in one of `files`, on `key`, with one of `phrases`."""

    files: tuple[Path, ...]
    key: str
    phrases: tuple[str, ...]

    def found_in(self, issues) -> bool:
        return any(
            issue.file in self.files
            and issue.key == self.key
            and any(p in issue.message for p in self.phrases)
            for issue in issues
        )


@dataclass
class Scenario:
    files: dict[Path, Any] = field(default_factory=dict)
    expected: list[Expect] = field(default_factory=list)

    def expect(self, file: Path | tuple[Path, ...], key: str, *phrases: str) -> None:
        files = file if isinstance(file, tuple) else (file,)
        self.expected.append(Expect(files, key, phrases))

    def __repr__(self) -> str:  # short, whatever the files hold
        files = {
            str(k): (v if len(repr(v)) < 300 else f"{repr(v)[:300]}...")
            for k, v in self.files.items()
        }
        return f"Scenario(files={files}, expected={self.expected})"


def _check_rejected(root: Path, scenario: Scenario, env: str = "dev") -> ConfigError:
    """Loading fails with a ConfigError (nothing else) that lists every expected issue, names
    only files the scenario touched, and prints each issue as `file: key 'k': message`."""
    _write(root, scenario.files)
    with pytest.raises(ConfigError) as caught:
        load_environment(root, env)
    error = caught.value
    text = str(error)
    for expect in scenario.expected:
        assert expect.found_in(error.issues), f"{expect} not in:\n{text}"
    touched = {f for e in scenario.expected for f in e.files}
    for issue in error.issues:
        assert issue.file in touched, f"an issue in a file the scenario did not break:\n{text}"
        assert issue.message, issue
        where = f"{issue.file}: key '{issue.key}'" if issue.key else f"{issue.file}"
        assert f"{where}: {issue.message}" in text
    return error


# ---- what is valid, decided here (not by the loader's own patterns) ---------------------------

_ACCOUNT = re.compile(r"[0-9]{12}")
_REGION = re.compile(r"[a-z]{2}(-gov)?-[a-z]+-[0-9]")
_ROLE_NAME = re.compile(r"[A-Za-z0-9_+=,.@-]{1,64}")
_REFERENCE = re.compile(r"([0-9]{3}_[a-z0-9][a-z0-9_-]*)\.([A-Za-z_][A-Za-z0-9_-]*)")
_STACK_FOLDER = re.compile(r"[0-9]{3}_[a-z0-9][a-z0-9_-]*")

_FUNCTION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")  # a folder of lambdas/, a Lambda name


REGIONS = st.sampled_from(["eu-west-1", "us-east-1", "ap-southeast-2", "us-gov-west-1"])
ACCOUNTS = st.from_regex(_ACCOUNT, fullmatch=True)
ROLE_NAMES = st.from_regex(_ROLE_NAME, fullmatch=True)
STACK_NAMES = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,15}", fullmatch=True)


def _wrong(accepts) -> st.SearchStrategy[Any]:
    return VALUES.filter(lambda v: not accepts(v))


def _is_str_table(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


ENV_TYPES = {
    "account_id": lambda v: isinstance(v, str),
    "region": lambda v: isinstance(v, str),
    "deploy_role": lambda v: isinstance(v, str),
    "protected": lambda v: isinstance(v, bool),
    "lambda_architecture": lambda v: v in ("arm64", "x86_64") and isinstance(v, str),
    "tags": _is_str_table,
}
BAD_ACCOUNTS = st.one_of(
    st.sampled_from(["", "1234", "11111111111", "1111111111111", "11111111111a", " 111111111111"]),
    st.sampled_from(["111-111-111-111", "\uff11" * 12, "-11111111111", "1e11"]),
    st.sampled_from(["111111111111\n", "\u0661" * 12, "11111111111\u0967", "\n111111111111"]),
    TEXT,
).filter(lambda s: not _ACCOUNT.fullmatch(s))
BAD_REGIONS = st.one_of(
    st.sampled_from(["EU-WEST-1", "eu-west", "euwest1", "eu-west-12", "eu_west_1", "eu-west-1 "]),
    st.sampled_from(["eu-west-1\n", "eu-west-\u0661", "eu-west-\uff11"]),
    TEXT,
).filter(lambda s: not _REGION.fullmatch(s))
BAD_ROLES = st.one_of(
    st.sampled_from(["", "a" * 65, "de ploy", "role/x", "arn:aws:iam::111111111111:user/x"]),
    st.sampled_from(["arn:aws:iam::1111:role/x", "arn:", "arn:aws:iam::111111111111:role/"]),
    st.sampled_from(["deploy\n", "rôle", "dé", "arn:aws:iam::111111111111:role/x\n"]),
    TEXT,
).filter(
    lambda s: (
        not (s.startswith("arn:") and re.fullmatch(r"arn:aws[a-z-]*:iam::[0-9]{12}:role/\S+", s))
        and not (not s.startswith("arn:") and _ROLE_NAME.fullmatch(s))
    )
)


# ---- env.toml ---------------------------------------------------------------------------------


@st.composite
def env_scenarios(draw: st.DrawFn) -> Scenario:
    """env.toml with one to four problems at once (each on its own key)."""
    scenario = Scenario()
    doc: dict[str, Any] = dict(BASE_ENV)
    if draw(st.booleans()):
        doc.update(
            draw(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "region": REGIONS,
                        "protected": st.booleans(),
                        "lambda_architecture": st.sampled_from(["arm64", "x86_64"]),
                        "tags": st.dictionaries(KEYS, TEXT, max_size=3),
                    },
                )
            )
        )
    kinds = draw(
        st.lists(
            st.sampled_from(
                [
                    *("wrong_type", "missing", "unknown", "bad_account", "bad_region"),
                    *("bad_role", "foreign_arn", "shared_account"),
                ]
            ),
            min_size=1,
            max_size=4,
        )
    )
    used: set[str] = set()
    for kind in kinds:
        if kind == "wrong_type":
            key = draw(st.sampled_from(sorted(set(ENV_TYPES) - used)))
            doc[key] = draw(_wrong(ENV_TYPES[key]))
            scenario.expect(ENV, key, "expected ")
        elif kind == "missing":
            key = draw(st.sampled_from(sorted({"account_id", "deploy_role"} - used) or ["-"]))
            if key == "-":
                continue
            doc.pop(key)
            scenario.expect(ENV, key, "missing: expected ")
        elif kind == "unknown":
            key = draw(KEYS.filter(lambda k: k not in ENV_TYPES))
            doc[key] = draw(VALUES)
            scenario.expect(ENV, key, "unknown key (known keys here: ")
        elif kind == "bad_account" and "account_id" not in used:
            key = "account_id"
            doc[key] = draw(BAD_ACCOUNTS)
            scenario.expect(ENV, key, "expected exactly 12 digits, got ")
        elif kind == "bad_region" and "region" not in used:
            key = "region"
            doc[key] = draw(BAD_REGIONS)
            scenario.expect(ENV, key, "expected an AWS region name")
        elif kind == "bad_role" and "deploy_role" not in used:
            key = "deploy_role"
            doc[key] = draw(BAD_ROLES)
            scenario.expect(ENV, key, "expected an IAM role")
        elif kind == "foreign_arn" and not {"account_id", "deploy_role"} & used:
            key = "deploy_role"
            other = draw(ACCOUNTS.filter(lambda a: a != doc["account_id"]))
            doc[key] = f"arn:aws:iam::{other}:role/deploy"
            scenario.expect(ENV, key, "is not this environment's account_id")
            used.add("account_id")  # the check needs this account id as it is
        elif kind == "shared_account" and "account_id" not in used:
            key = "account_id"
            scenario.files[Path("live/prod/env.toml")] = {
                "account_id": doc["account_id"],
                "deploy_role": "deploy",
            }
            scenario.expect(ENV, key, "is also used by environment 'prod'")
        else:
            continue
        used.add(key)
    if not scenario.expected:
        doc.pop("deploy_role")
        scenario.expect(ENV, "deploy_role", "missing: expected ")
    scenario.files[ENV] = doc
    return scenario


def test_malformed_env_files_are_config_errors_naming_file_and_key(repo):
    root = _prepare(repo)

    @settings(SETTINGS, max_examples=_examples(250))
    @given(scenario=env_scenarios())
    def check(scenario: Scenario) -> None:
        _check_rejected(root, scenario)

    check()


# ---- stack.toml -------------------------------------------------------------------------------

STACK_TYPES = {
    "module": lambda v: isinstance(v, str),
    "description": lambda v: isinstance(v, str),
    "inputs": lambda v: isinstance(v, dict),
    "database": lambda v: isinstance(v, dict),
    "lambdas": lambda v: isinstance(v, dict),
    "dependencies": lambda v: (
        isinstance(v, dict)
        and all(
            isinstance(x, str)
            or (isinstance(x, list) and all(isinstance(i, str) for i in x))
            or (isinstance(x, dict) and all(isinstance(i, str) for i in x.values()))
            for x in v.values()
        )
    ),
}
STACK_KINDS = [
    "module_missing",
    "module_type",
    "module_unknown",
    "unknown_key",
    "wrong_type",
    "unknown_input",
    "date_input",
    "nonfinite_input",
    "missing_input",
    "bad_reference",
    "ghost_stack",
    "later_stack",
    "self_reference",
    "empty_reference",
    "no_output",
    "set_twice",
    "unknown_dependency",
    "database",
    "lambdas_input",
    "lambdas_function",
    "lambdas_filled",
    "not_toml",
    "not_utf8",
    "bad_folder",
    "duplicate_number",
    "reserved_number",
]
BAD_REFERENCES = st.one_of(
    st.sampled_from(
        [
            "net.vpc_id",
            "010_net",
            "010_net.",
            ".vpc_id",
            "10_net.vpc_id",
            "0100_net.vpc_id",
            "010_Net.vpc_id",
            "010_net.vpc id",
            "010_net.1abc",
            "${010_net.vpc_id}",
            "010_net/vpc_id",
            "../010_net.vpc_id",
            "010_net.vpc_id ",
            " 010_net.vpc_id",
            "010_net..vpc_id",
            "010_net.vpc_id\n",
            "\u0660\u0661\u0660_net.vpc_id",
            "010_net.vpç_id",
            "010_net.vpc\u0661",
        ]
    ),
    TEXT,
).filter(lambda s: not _REFERENCE.fullmatch(s))
DATES = st.one_of(st.datetimes(), st.dates(), st.times())


def _reference_shape(draw: st.DrawFn, reference: str) -> Any:
    """One reference as a string, in an array or in a table (with valid neighbours)."""
    shape = draw(st.sampled_from(["one", "list", "map"]))
    if shape == "one":
        return reference
    if shape == "list":
        return ["010_net.vpc_id", reference]
    return {"a": "010_net.vpc_id", "b": reference}


@st.composite
def stack_defect(draw: st.DrawFn, index: int, scenario: Scenario) -> None:
    """One broken stack (its own folder, number 100 + 10 * index) added to the scenario."""
    kind = draw(st.sampled_from(STACK_KINDS))
    number, name = 100 + 10 * index, draw(STACK_NAMES)
    folder = Path(f"live/dev/{number:03d}_{name}")
    file = folder / "stack.toml"
    doc: dict[str, Any] = {
        "module": "consumer",
        "dependencies": {"vpc_id": "010_net.vpc_id", "subnet_ids": "010_net.subnet_ids"},
    }
    if kind == "module_missing":
        doc.pop("module")
        scenario.expect(file, "module", "missing: expected the name of a folder under modules/")
    elif kind == "module_type":
        doc["module"] = draw(_wrong(STACK_TYPES["module"]))
        scenario.expect(file, "module", "expected the name of a folder under modules/, got ")
    elif kind == "module_unknown":
        doc["module"] = draw(
            st.one_of(
                TEXT, st.sampled_from(["m" * 256, "m" * 5000, "a\x00b", "./consumer"])
            ).filter(lambda s: s not in ("networkish", "consumer", "api"))
        )
        if doc["module"] == "":
            scenario.expect(file, "module", "expected the name of a folder under modules/, got ''")
        else:
            scenario.expect(file, "module", "no module ", "(available: api, consumer, networkish)")
    elif kind == "unknown_key":
        key = draw(KEYS.filter(lambda k: k not in STACK_TYPES))
        doc[key] = draw(VALUES)
        scenario.expect(file, key, "unknown key (known keys here: ")
    elif kind == "wrong_type":
        key = draw(st.sampled_from(sorted(set(STACK_TYPES) - {"module"})))
        doc[key] = draw(_wrong(STACK_TYPES[key]))
        scenario.expect(file, key, "expected ")
    elif kind == "unknown_input":
        key = draw(KEYS.filter(lambda k: k not in ("vpc_id", "subnet_ids", "size")))
        doc["inputs"] = {key: draw(VALUES)}
        scenario.expect(file, f"inputs.{key}", "has no variable", "its variables: ")
    elif kind == "date_input":
        doc["inputs"] = {"size": draw(st.one_of(DATES, st.lists(DATES, min_size=1, max_size=2)))}
        scenario.expect(file, "inputs.size", "expected a string, number, bool, array or table")
    elif kind == "nonfinite_input":
        nonfinite = st.sampled_from([float("nan"), float("inf"), float("-inf")])
        doc["inputs"] = {
            "size": draw(
                st.one_of(
                    nonfinite,
                    st.lists(nonfinite, min_size=1, max_size=2).map(lambda v: [1.5, *v]),
                    nonfinite.map(lambda v: {"a": {"b": [v]}}),
                )
            )
        }
        scenario.expect(file, "inputs.size", "expected a finite number")
    elif kind == "missing_input":
        doc["dependencies"].pop(draw(st.sampled_from(["vpc_id", "subnet_ids"])))
        key = "vpc_id" if "vpc_id" not in doc["dependencies"] else "subnet_ids"
        scenario.expect(file, f"inputs.{key}", "missing: module 'consumer' requires variable")
    elif kind == "bad_reference":
        doc["dependencies"]["vpc_id"] = _reference_shape(draw, draw(BAD_REFERENCES))
        scenario.expect(
            file,
            "dependencies.vpc_id",
            'expected "NNN_stack.output", got ',
            "does not exist in this environment",
            "has no output",
        )
    elif kind == "ghost_stack":
        ghost = draw(
            st.tuples(st.integers(400, 999), STACK_NAMES | st.just("n" * 300)).map(
                lambda t: f"{t[0]:03d}_{t[1]}"
            )
        )  # numbers no stack of the scenario has; names up to longer than a file name
        doc["dependencies"]["vpc_id"] = _reference_shape(draw, f"{ghost}.vpc_id")
        scenario.expect(file, "dependencies.vpc_id", "does not exist in this environment")
    elif kind == "later_stack":
        folder = Path(f"live/dev/{index + 1:03d}_{name}")  # before 010_net
        file = folder / "stack.toml"
        doc["dependencies"]["vpc_id"] = _reference_shape(draw, "010_net.vpc_id")
        scenario.expect(file, "dependencies.vpc_id", "is not earlier than this one")
    elif kind == "self_reference":
        doc["dependencies"]["vpc_id"] = _reference_shape(draw, f"{folder.name}.id")
        scenario.expect(file, "dependencies.vpc_id", "a stack cannot depend on its own outputs")
    elif kind == "empty_reference":
        doc["dependencies"][draw(st.sampled_from(["vpc_id", "subnet_ids"]))] = draw(
            st.sampled_from([[], {}])
        )
        key = "vpc_id" if doc["dependencies"]["vpc_id"] in ([], {}) else "subnet_ids"
        scenario.expect(
            file, f"dependencies.{key}", "expected at least one NNN_stack.output reference"
        )
    elif kind == "no_output":
        output = draw(st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,15}", fullmatch=True))
        output = output if output not in NET_OUTPUTS else output + "_x"
        doc["dependencies"]["vpc_id"] = _reference_shape(draw, f"010_net.{output}")
        scenario.expect(file, "dependencies.vpc_id", "has no output", "its outputs: ")
    elif kind == "set_twice":
        doc["inputs"] = {"vpc_id": draw(TEXT)}
        scenario.expect(file, "dependencies.vpc_id", "is also set in [inputs]")
    elif kind == "unknown_dependency":
        key = draw(KEYS.filter(lambda k: k not in ("vpc_id", "subnet_ids", "size")))
        doc["dependencies"][key] = "010_net.vpc_id"
        scenario.expect(file, f"dependencies.{key}", "has no variable")
    elif kind == "database":
        table = draw(st.sampled_from([{}, {"migrations": "lambdas/migrations"}, {"x": 1}]))
        doc["database"] = table
        scenario.expect(file, "database", "lacks the outputs a database stack needs")
        for key in table:
            scenario.expect(file, f"database.{key}", "unknown key")
    elif kind in ("lambdas_input", "lambdas_function", "lambdas_filled"):
        doc = {"module": "api", "lambdas": {"input": "functions"}}
        if kind == "lambdas_input":
            doc["inputs"] = {"functions": draw(_wrong(lambda v: isinstance(v, dict) and v))}
            scenario.expect(file, "lambdas.input", "must be a table with one entry per function")
        elif kind == "lambdas_function":
            ghost = draw(
                st.one_of(
                    KEYS,
                    st.sampled_from(["../lambdas/hello", "./hello", "hello/", "_hello", "f" * 300]),
                ).filter(lambda k: k != "hello")
            )
            doc["inputs"] = {"functions": {ghost: {}}}
            if _FUNCTION.fullmatch(ghost):
                scenario.expect(file, f"inputs.functions.{ghost}", "no function package lambdas/")
            else:
                scenario.expect(
                    file, f"inputs.functions.{ghost}", "expected a function name: the name of a"
                )
        else:
            filled = draw(st.sampled_from(["zip_path", "source_code_hash", "handler"]))
            doc["inputs"] = {"functions": {"hello": {filled: draw(VALUES)}}}
            key = f"inputs.functions.hello.{filled}"
            scenario.expect(file, key, "set by stackrun from the build; remove it")
    elif kind == "not_toml":
        text = toml_document(doc)
        broken = draw(
            st.sampled_from(
                [
                    text + "= =\n",
                    text + 'module = "again"\n',
                    text + 'x = "unterminated\n',
                    text + 'x = "\\q"\n',
                    text + 'x = "\\ud800"\n',
                    text + "café = 1\n",
                    text + "x = [1, 2\n",
                    text + "x = 1979-13-45\n",
                    text + "x = 0x\n",
                    text + "[dependencies\n",
                    '"' + text,
                    text.replace("=", ":", 1),
                    text + "x = \x01\n",
                    text + "x = " + "[" * 5000 + "]" * 5000 + "\n",
                    text + "x = " + "{ a = " * 3000 + "1" + " }" * 3000 + "\n",
                ]
            )
        )
        scenario.files[file] = broken
        scenario.expect(file, "", "not valid TOML: ", "nesting too deep")
        return
    elif kind == "not_utf8":
        data = toml_document(doc).encode("utf-8")
        at = draw(st.integers(0, len(data)))
        scenario.files[file] = (
            data[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"])) + data[at:]
        )
        scenario.expect(file, "", "not valid UTF-8 text")
        return
    elif kind == "bad_folder":
        bad = draw(
            st.one_of(
                st.sampled_from(["network", "10_x", "0100_x", "010-x", "010_X", "010_", "abc_x"]),
                st.sampled_from(["010_café", "010_x y", "010_-x", "010__x"]),
                st.sampled_from(["010_x\n", "\u0660\u0661\u0660_x", "010_\u0661", "\u0967" * 3]),
                st.text(
                    st.characters(codec="utf-8", exclude_characters="/\x00"),
                    min_size=1,
                    max_size=20,
                ),
            ).filter(
                lambda s: (
                    not _STACK_FOLDER.fullmatch(s)
                    and not s.startswith(".")
                    and s != "env.toml"
                    and len(s.encode()) <= 255  # the test could not create it
                )
            )
        )
        folder = Path("live/dev") / bad
        scenario.files[folder / "stack.toml"] = NET
        scenario.expect(folder, "", "not a stack folder name: expected NNN_<name>")
        return
    elif kind == "duplicate_number":
        folder = Path(f"live/dev/010_{name if name != 'net' else 'net2'}")
        scenario.files[folder / "stack.toml"] = NET
        both = (folder, Path("live/dev/010_net"))
        scenario.expect(both, "", "stack number 010 is also used by")
        return
    else:  # reserved_number
        folder = Path(f"live/dev/000_{name}")
        scenario.files[folder / "stack.toml"] = NET
        scenario.expect(folder, "", "number 000 is reserved for the state bootstrap")
        return
    scenario.files[file] = doc


@st.composite
def stack_scenarios(draw: st.DrawFn) -> Scenario:
    """One to three broken stacks next to the valid 010_net and 020_app."""
    scenario = Scenario()
    for index in range(draw(st.integers(1, 3))):
        draw(stack_defect(index, scenario))
    return scenario


def test_malformed_stack_files_are_config_errors_naming_file_and_key(repo):
    root = _prepare(repo)

    @settings(SETTINGS, max_examples=_examples(300))
    @given(scenario=stack_scenarios())
    def check(scenario: Scenario) -> None:
        _check_rejected(root, scenario)

    check()


# ---- project.toml -----------------------------------------------------------------------------

PROJECT_TYPES = {
    ("project", "name"): lambda v: isinstance(v, str),
    ("project", "default_region"): lambda v: isinstance(v, str),
    ("project", "tags"): _is_str_table,
    ("backend", "bucket"): lambda v: isinstance(v, str),
    ("backend", "lock_table"): lambda v: isinstance(v, str),
    ("backend", "deletion_protection"): lambda v: isinstance(v, bool),
    ("terraform", "version"): lambda v: isinstance(v, str),
    ("terraform", "aws_provider_version"): lambda v: isinstance(v, str),
    ("terraform", "lock_timeout"): lambda v: isinstance(v, str),
    ("terraform", "provider_mirror"): lambda v: isinstance(v, str),
    ("local", "port"): lambda v: isinstance(v, int) and not isinstance(v, bool),
}


@st.composite
def project_scenarios(draw: st.DrawFn) -> Scenario:
    scenario = Scenario()
    doc = {"project": dict(BASE_PROJECT["project"])}
    kind = draw(
        st.sampled_from(
            [
                *("wrong_type", "unknown", "table_type", "bad_name", "bad_region"),
                *("bad_timeout", "bad_port", "bad_placeholder", "lone_brace", "bad_bucket"),
                "missing",
            ]
        )
    )
    if kind == "wrong_type":
        table, key = draw(st.sampled_from(sorted(PROJECT_TYPES)))
        doc.setdefault(table, {})[key] = draw(_wrong(PROJECT_TYPES[(table, key)]))
        scenario.expect(PROJECT, f"{table}.{key}", "expected ")
    elif kind == "unknown":
        table = draw(st.sampled_from(["project", "backend", "terraform", "local"]))
        key = draw(KEYS.filter(lambda k: (table, k) not in PROJECT_TYPES))
        doc.setdefault(table, {})[key] = draw(VALUES)
        scenario.expect(PROJECT, f"{table}.{key}", "unknown key (known keys here: ")
    elif kind == "table_type":
        table = draw(st.sampled_from(["project", "backend", "terraform", "local"]))
        doc[table] = draw(_wrong(lambda v: isinstance(v, dict)))
        scenario.expect(PROJECT, table, "expected a table")
    elif kind == "bad_name":
        doc["project"]["name"] = draw(
            st.one_of(TEXT, st.sampled_from(["fleet\n", "fle\u0661t", "\ufb02eet"])).filter(
                lambda s: s and not re.fullmatch(r"[a-z][a-z0-9-]{1,30}[a-z0-9]", s)
            )
        )
        scenario.expect(PROJECT, "project.name", "expected 3 to 32 lowercase letters")
    elif kind == "bad_region":
        doc["project"]["default_region"] = draw(BAD_REGIONS.filter(bool))
        scenario.expect(PROJECT, "project.default_region", "expected an AWS region name")
    elif kind == "bad_timeout":
        doc["terraform"] = {
            "lock_timeout": draw(
                st.one_of(
                    st.sampled_from(["5", "m", "5 m", "5d", "-5m", "1.5m", "5m\n", "\u0665m"]),
                    TEXT,
                ).filter(lambda s: not re.fullmatch(r"[0-9]+[smh]", s))
            )
        }
        scenario.expect(PROJECT, "terraform.lock_timeout", 'expected a duration like "5m"')
    elif kind == "bad_port":
        doc["local"] = {"port": draw(st.integers(-(2**63), 1023) | st.integers(65536, 2**63 - 1))}
        scenario.expect(PROJECT, "local.port", "expected a TCP port between 1024 and 65535")
    elif kind == "bad_placeholder":
        key = draw(st.sampled_from(["bucket", "lock_table"]))
        field_name = draw(
            st.text(st.characters(codec="utf-8", exclude_characters="{}"), max_size=10).filter(
                lambda s: s not in ("project", "account_id", "region", "env")
            )
        )
        doc["backend"] = {key: f"fleet-{{{field_name}}}-x"}
        scenario.expect(PROJECT, f"backend.{key}", "unknown placeholder(s)")
    elif kind == "lone_brace":
        key = draw(st.sampled_from(["bucket", "lock_table"]))
        doc["backend"] = {
            key: draw(
                st.sampled_from(["fleet-{", "fleet-}", "{project}-{", "}{env}", "{{env}", "{env}}"])
            )
        }
        scenario.expect(PROJECT, f"backend.{key}", "not part of a placeholder")
    elif kind == "bad_bucket":
        doc["backend"] = {
            "bucket": draw(st.sampled_from(["UPPER-{env}", "x", "a..b-{env}", "-x-{project}"]))
        }
        scenario.expect(PROJECT, "backend.bucket", "not a valid S3 bucket name")
    else:
        key = draw(st.sampled_from(["name", "default_region"]))
        doc["project"].pop(key)
        scenario.expect(PROJECT, f"project.{key}", "missing: expected ")
    scenario.files[PROJECT] = doc
    return scenario


def test_malformed_project_files_are_config_errors_naming_file_and_key(repo):
    root = _prepare(repo)

    @settings(SETTINGS, max_examples=_examples(150))
    @given(scenario=project_scenarios())
    def check(scenario: Scenario) -> None:
        error = _check_rejected(root, scenario)
        if any(e.key != "backend.bucket" for e in scenario.expected):
            with pytest.raises(ConfigError):  # project.toml alone fails the same way
                load_project(root)
        assert error.issues

    check()


# ---- valid environments load as written -------------------------------------------------------

INPUT_VALUES = st.recursive(
    st.one_of(
        TEXT,
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
    ),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=3),
    max_leaves=5,
)


@st.composite
def valid_environments(draw: st.DrawFn) -> tuple[dict[str, Any], list[tuple[str, dict]]]:
    """An env.toml and one to six stacks (networkish, or consumer of earlier networkish
    stacks through one, list or table references), all valid."""
    account = draw(ACCOUNTS)
    env: dict[str, Any] = {"account_id": account}
    role = draw(st.one_of(ROLE_NAMES, ROLE_NAMES.map(lambda r: f"arn:aws:iam::{account}:role/{r}")))
    env["deploy_role"] = role
    env.update(
        draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "region": REGIONS,
                    "protected": st.booleans(),
                    "lambda_architecture": st.sampled_from(["arm64", "x86_64"]),
                    "tags": st.dictionaries(KEYS, TEXT, max_size=3),
                },
            )
        )
    )
    numbers = draw(st.lists(st.integers(1, 999), min_size=1, max_size=6, unique=True))
    stacks: list[tuple[str, dict]] = []
    networks: list[str] = []
    for number in sorted(numbers):
        folder = f"{number:03d}_{draw(STACK_NAMES)}"
        doc: dict[str, Any]
        if networks and draw(st.booleans()):

            def ref(output: str) -> str:
                return f"{draw(st.sampled_from(networks))}.{output}"

            subnets = draw(
                st.sampled_from(
                    [
                        ref("subnet_ids"),
                        [ref("vpc_id"), ref("secret")],
                        {"first": ref("vpc_id"), "ünïcode key": ref("subnet_ids")},
                    ]
                )
            )
            doc = {
                "module": "consumer",
                "dependencies": {"vpc_id": ref("vpc_id"), "subnet_ids": subnets},
            }
            if draw(st.booleans()):
                doc["inputs"] = {"size": draw(INPUT_VALUES)}
        else:
            doc = {"module": "networkish", "inputs": {"name": draw(INPUT_VALUES)}}
            if draw(st.booleans()):
                doc["inputs"]["cidr"] = draw(INPUT_VALUES)
            networks.append(folder)
        if draw(st.booleans()):
            doc["description"] = draw(TEXT)
        stacks.append((folder, doc))
    return env, stacks


def test_valid_environments_load_as_written(repo):
    root = _prepare(repo)

    @settings(SETTINGS, max_examples=_examples(150))
    @given(generated=valid_environments())
    def check(generated) -> None:
        env, stacks = generated
        files: dict[Path, Any] = {ENV: env}
        files.update({Path(f"live/dev/{folder}/stack.toml"): doc for folder, doc in stacks})
        _write(root, files, stacks=False)
        loaded = load_environment(root, "dev")
        assert loaded.account_id == env["account_id"]
        assert loaded.region == env.get("region", "eu-west-1")
        role = env["deploy_role"]
        expected_arn = (
            role if role.startswith("arn:") else f"arn:aws:iam::{env['account_id']}:role/{role}"
        )
        assert loaded.deploy_role_arn == expected_arn
        assert loaded.protected == env.get("protected", False)
        assert loaded.lambda_architecture == env.get("lambda_architecture", "arm64")
        assert dict(loaded.tags) == env.get("tags", {})
        assert [s.name for s in loaded.stacks] == [folder for folder, _ in stacks]
        for stack, (_, doc) in zip(loaded.stacks, stacks, strict=True):
            assert stack.module.name == doc["module"]
            assert dict(stack.inputs) == doc.get("inputs", {})
            assert stack.description == doc.get("description", "")
            written = doc.get("dependencies", {})
            assert {d.input_name for d in stack.dependencies} == set(written)
            for dependency in stack.dependencies:
                value = written[dependency.input_name]
                texts = (
                    value
                    if isinstance(value, list)
                    else list(value.values())
                    if isinstance(value, dict)
                    else [value]
                )
                assert [str(r) for r in dependency.references] == texts

    check()


# ---- --set NNN_stack.input=VALUE ------------------------------------------------------------

# The inputs of the default layout that --set may change: module variables, not dependencies.
OVERRIDABLE = {"010_net": ("cidr", "name"), "020_app": ("size",)}
SET = Path("--set")
PADDING = st.sampled_from(["", " ", "  "])


def _one_json_value(raw: str) -> bool:
    """Whether `raw` is exactly one TOML value that JSON (and so terraform) can carry."""
    try:
        document = tomllib.loads(f"value = {raw.strip()}")
        json.dumps(document["value"], allow_nan=False)
    except (tomllib.TOMLDecodeError, TypeError, ValueError, RecursionError):
        return False
    return set(document) == {"value"}


@st.composite
def valid_overrides(draw: st.DrawFn) -> tuple[str, str, str, Any]:
    """(text, stack, input, value): a --set that must change exactly that input."""
    stack = draw(st.sampled_from(sorted(OVERRIDABLE)))
    name = draw(st.sampled_from(OVERRIDABLE[stack]))
    value = draw(INPUT_VALUES)
    pads = [draw(PADDING) for _ in range(4)]
    text = f"{pads[0]}{stack}.{name}{pads[1]}={pads[2]}{toml_value(value)}{pads[3]}"
    return text, stack, name, value


VALID_TARGETS = {f"{stack}.{name}" for stack, names in OVERRIDABLE.items() for name in names}
BAD_TARGETS = st.one_of(
    st.sampled_from(
        [
            *("", "010_net", "010_net.", ".name", "name", "999_x.name", "010_net.nope"),
            *("010_NET.name", "010_net .name", "010_net. name", "010_net.name.x", "010_net.Name"),
            *("020_app.vpc_id", "020_app.subnet_ids", "020_app.name", "010_net.name\n"),
            *("\u0660\u0661\u0660_net.name", "010_net.nam\u0435", "010_net" + ".name" * 100),
        ]
    ),
    TEXT,
).filter(lambda target: "=" not in target and target.strip() not in VALID_TARGETS)
BAD_VALUES = st.one_of(
    st.sampled_from(
        [
            *("", " ", "x", "'unterminated", '"a" "b"', "tru", "True", "1_", "0x", "[1,", "{a=}"),
            *("nan", "+nan", "inf", "-inf", "[1.0, nan]", "{ a = { b = inf } }"),
            *("1979-05-27", "07:32:00", "1979-05-27T07:32:00Z", "[1979-05-27]"),
            *("1\nx = 2", '"a"\nvalue = "b"', "{}\n[other]", "1 # fine\nx = 1"),
            "[" * 3000 + "]" * 3000,
            "{ a = " * 2000 + "1" + " }" * 2000,
        ]
    ),
    TEXT,
).filter(lambda raw: not _one_json_value(raw))


@st.composite
def malformed_overrides(draw: st.DrawFn) -> str:
    """A --set that must be refused: no '=', a target that is no overridable input, or a
    value that is not one TOML value terraform can take."""
    kind = draw(st.sampled_from(["no_equals", "bad_target", "bad_value"]))
    if kind == "no_equals":
        return draw(
            st.one_of(TEXT, st.sampled_from(["010_net.name", "010_net.name 3"])).filter(
                lambda text: "=" not in text
            )
        )
    if kind == "bad_target":
        return f"{draw(BAD_TARGETS)}={toml_value(draw(INPUT_VALUES))}"
    target = draw(st.sampled_from(sorted(VALID_TARGETS)))
    return f"{target}{draw(PADDING)}={draw(BAD_VALUES)}"


def test_malformed_overrides_are_config_errors_naming_set_and_the_override(repo):
    root = _prepare(repo)
    _write(root, {})
    environment = load_environment(root, "dev")

    @settings(SETTINGS, max_examples=_examples(300))
    @given(
        overrides=st.lists(
            malformed_overrides().map(lambda text: (text, True))
            | valid_overrides().map(lambda valid: (valid[0], False)),
            min_size=1,
            max_size=4,
        ).filter(lambda items: any(malformed for _, malformed in items))
    )
    def check(overrides: list[tuple[str, bool]]) -> None:
        texts = [text for text, _ in overrides]
        malformed = {text for text, bad in overrides if bad}
        with pytest.raises(ConfigError) as caught:
            apply_overrides(environment, texts)
        error = caught.value
        message = str(error)
        for text in malformed:  # every malformed override is reported, as given
            assert any(i.file == SET and i.key == text for i in error.issues), message
            assert (f"--set: key '{text}': " if text else "--set: ") in message
        for issue in error.issues:  # and nothing else
            assert issue.file == SET and issue.key in malformed and issue.message, message

    check()


# ---- defects these properties found, fixed: each stays a ConfigError on its file and key -----


def _load(repo, files: dict[Path, Any]) -> None:
    root = _prepare(repo)
    _write(root, files)
    load_environment(root, "dev")


def _rejected_on(repo, files: dict[Path, Any], file: Path, key: str, phrase: str = "") -> None:
    """A ConfigError with an issue on `file` and `key` (whose message holds `phrase`), and
    no issue in another file (a misleading second report of the same cause)."""
    try:
        _load(repo, files)
    except ConfigError as error:
        assert any(i.file == file and i.key == key and phrase in i.message for i in error.issues), (
            str(error)
        )
        assert all(i.file == file for i in error.issues), str(error)
    else:
        raise AssertionError("loaded without a ConfigError")


@pytest.mark.parametrize("account", ["111111111111\n", "\u0661" * 12, "\uff11" * 12])
def test_an_account_id_with_a_newline_or_non_ascii_digits_is_rejected(repo, account):
    """Reported on env.toml account_id, not (as before) as a bad backend.bucket name."""
    env = {**BASE_ENV, "account_id": account}
    _rejected_on(repo, {ENV: env}, ENV, "account_id", "expected exactly 12 digits")


def test_a_role_arn_with_non_ascii_digits_in_its_account_is_rejected(repo):
    role = "arn:aws:iam::" + "\u0661" * 12 + ":role/deploy"
    env = {**BASE_ENV, "deploy_role": role}
    _rejected_on(repo, {ENV: env}, ENV, "deploy_role", "expected an IAM role ARN")


@pytest.mark.parametrize("region", ["eu-west-1\n", "eu-west-\u0661"])
def test_a_region_with_a_newline_or_non_ascii_digits_is_rejected(repo, region):
    _rejected_on(repo, {ENV: {**BASE_ENV, "region": region}}, ENV, "region", "AWS region name")


@pytest.mark.parametrize("role", ["deploy\n", "rôle", "arn:aws:iam::111111111111:role/x\n"])
def test_a_deploy_role_with_a_newline_or_non_ascii_letters_is_rejected(repo, role):
    env = {**BASE_ENV, "deploy_role": role}
    _rejected_on(repo, {ENV: env}, ENV, "deploy_role", "expected an IAM role")


@pytest.mark.parametrize("name", ["\u0660\u0663\u0660_x", "030_x\n", "030_\u0661"])
def test_a_stack_folder_named_with_non_ascii_digits_or_a_newline_is_not_a_stack(repo, name):
    folder = Path("live/dev") / name
    _rejected_on(repo, {folder / "stack.toml": NET}, folder, "", "not a stack folder name")


@pytest.mark.parametrize(
    "reference", ["010_net.vpc_id\n", "\u0660\u0661\u0660_net.vpc_id", "010_net.vpc_\u0661d"]
)
def test_a_reference_with_a_newline_or_non_ascii_characters_is_rejected(repo, reference):
    file = Path("live/dev/020_app/stack.toml")
    doc = {**APP, "dependencies": {**APP["dependencies"], "vpc_id": reference}}
    _rejected_on(repo, {file: doc}, file, "dependencies.vpc_id", 'expected "NNN_stack.output"')


@pytest.mark.parametrize("timeout", ["5m\n", "\u0665m"])
def test_a_lock_timeout_with_a_newline_or_non_ascii_digits_is_rejected(repo, timeout):
    project = {**BASE_PROJECT, "terraform": {"lock_timeout": timeout}}
    _rejected_on(repo, {PROJECT: project}, PROJECT, "terraform.lock_timeout", "a duration")


def test_a_module_name_longer_than_a_file_name_is_a_config_error(repo):
    file = Path("live/dev/030_x/stack.toml")
    _rejected_on(repo, {file: {**NET, "module": "m" * 300}}, file, "module", "no module 'mmm")


def test_an_empty_module_name_asks_for_a_folder_of_modules(repo):
    file = Path("live/dev/030_x/stack.toml")
    phrase = "expected the name of a folder under modules/, got '' (available: api, consumer"
    _rejected_on(repo, {file: {**NET, "module": ""}}, file, "module", phrase)


@pytest.mark.parametrize("name", ["f" * 300, "../lambdas/hello", "./hello", "hello/", "_hello"])
def test_a_function_name_that_is_not_a_folder_name_is_a_config_error(repo, name):
    file = Path("live/dev/030_x/stack.toml")
    doc = {"module": "api", "lambdas": {"input": "functions"}, "inputs": {"functions": {name: {}}}}
    _rejected_on(repo, {file: doc}, file, f"inputs.functions.{name}", "expected a function name")


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (["010_net"], None),
        (["030_x"], "a stack cannot wait for itself"),
        (["040_later"], "is not earlier than this one"),
        (["099_nope"], "does not exist in this environment"),
        ("010_net", "expected an array of earlier stacks"),
    ],
)
def test_after_names_earlier_stacks_and_orders_the_run(repo, after, expected):
    file = Path("live/dev/030_x/stack.toml")
    later = Path("live/dev/040_later/stack.toml")
    docs = {file: {**NET, "after": after}, later: dict(NET)}
    if expected is None:
        _write(_prepare(repo), docs)
        environment = load_environment(repo.root, "dev")
        stack = next(s for s in environment.stacks if s.name == "030_x")
        assert stack.after == ("010_net",)
        assert "010_net" in stack.upstream
    else:
        _rejected_on(repo, docs, file, "after", expected)


def test_a_reference_to_a_stack_name_longer_than_a_file_name_is_a_config_error(repo):
    file = Path("live/dev/020_app/stack.toml")
    doc = {**APP, "dependencies": {**APP["dependencies"], "vpc_id": f"010_{'n' * 300}.vpc_id"}}
    _rejected_on(repo, {file: doc}, file, "dependencies.vpc_id", "does not exist")


@pytest.mark.parametrize("empty", [[], {}])
def test_an_empty_reference_array_or_table_is_rejected(repo, empty):
    file = Path("live/dev/020_app/stack.toml")
    doc = {**APP, "dependencies": {**APP["dependencies"], "vpc_id": empty}}
    phrase = "expected at least one NNN_stack.output reference"
    _rejected_on(repo, {file: doc}, file, "dependencies.vpc_id", phrase)


@pytest.mark.parametrize("file", [ENV, PROJECT, Path("live/dev/010_net/stack.toml")])
def test_toml_nested_beyond_the_parsers_recursion_is_a_config_error(repo, file):
    text = 'module = "networkish"\n[inputs]\nname = ' + "[" * 5000 + "]" * 5000 + "\n"
    _rejected_on(repo, {file: text}, file, "", "nesting too deep")


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), -float("inf"), [1, float("nan")], {"a": float("inf")}]
)
def test_nan_and_infinity_inputs_are_rejected(repo, value):
    file = Path("live/dev/010_net/stack.toml")
    doc = {**NET, "inputs": {"name": value}}
    _rejected_on(repo, {file: doc}, file, "inputs.name", "expected a finite number")


@pytest.mark.parametrize("key", ["bucket", "lock_table"])
@pytest.mark.parametrize("template", ["fleet-{", "fleet-}", "{project}-{", "{{env}"])
def test_a_lone_brace_in_a_name_template_is_a_config_error(repo, key, template):
    project = {**BASE_PROJECT, "backend": {key: template}}
    phrase = "that is not part of a placeholder"
    _rejected_on(repo, {PROJECT: project}, PROJECT, f"backend.{key}", phrase)


def test_valid_overrides_change_exactly_their_inputs(repo):
    root = _prepare(repo)
    _write(root, {})
    environment = load_environment(root, "dev")
    before = {stack.name: dict(stack.inputs) for stack in environment.stacks}

    @settings(SETTINGS, max_examples=_examples(200))
    @given(overrides=st.lists(valid_overrides(), max_size=4))
    def check(overrides: list[tuple[str, str, str, Any]]) -> None:
        changed = apply_overrides(environment, [text for text, *_ in overrides])
        expected = {name: dict(inputs) for name, inputs in before.items()}
        for _, stack, name, value in overrides:  # the last --set of an input wins
            expected[stack][name] = value
        assert replace(changed, stacks=environment.stacks) == environment
        for old, new in zip(environment.stacks, changed.stacks, strict=True):
            assert dict(new.inputs) == expected[old.name]
            assert replace(new, inputs=old.inputs) == old  # nothing else of the stack moves
        assert {s.name: dict(s.inputs) for s in environment.stacks} == before  # not mutated

    check()
