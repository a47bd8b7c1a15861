"""Reading a module's interface: what is declared, and the parse cache by file content."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackrun.config import module_interface
from stackrun.config.module_interface import read_module


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("STACKRUN_CACHE_DIR", raising=False)
    folder = tmp_path / "modules" / "thing"
    folder.mkdir(parents=True)
    (folder / "variables.tf").write_text(
        'variable "name" {\n  description = "The name"\n  type = string\n}\n'
        'variable "size" {\n  type    = number\n  default = 1\n}\n'
    )
    (folder / "outputs.tf").write_text(
        'output "id" {\n  value = "x"\n}\n'
        'output "secret" {\n  value     = "y"\n  sensitive = true\n}\n'
    )
    (folder / "main.tf").write_text('resource "null_resource" "x" {}\n')
    return folder


def test_variables_and_outputs_are_read_and_cached_by_content(module: Path) -> None:
    info, problems = read_module(module)
    assert problems == [] and info is not None
    assert {name: v.required for name, v in info.variables.items()} == {
        "name": True,
        "size": False,
    }
    assert info.variables["name"].description == "The name"
    assert info.outputs == {"id", "secret"} and info.sensitive_outputs == {"secret"}
    cache = module.parent.parent / ".stackrun" / "hcl"
    assert len(list(cache.glob("*.json"))) == 2  # variables.tf and outputs.tf, not main.tf

    # an edit is a new content: parsed again, the new variable is seen
    variables = module / "variables.tf"
    variables.write_text(variables.read_text() + 'variable "extra" {\n  type = string\n}\n')
    info, _ = read_module(module)
    assert info is not None and set(info.variables) == {"name", "size", "extra"}


def test_a_cached_file_is_not_read_again_and_a_damaged_cache_is(
    module: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read_module(module)
    module_interface._read_module_cached.cache_clear()  # a new command: only the disk cache is left
    calls: list[str] = []
    real_scan = module_interface._scan
    monkeypatch.setattr(
        module_interface, "_scan", lambda text: calls.append(text) or real_scan(text)
    )
    info, _ = read_module(module)
    assert calls == [] and info is not None and "secret" in info.sensitive_outputs

    for cached in (module.parent.parent / ".stackrun" / "hcl").glob("*.json"):
        cached.write_text("{not json")
    module_interface._read_module_cached.cache_clear()
    info, _ = read_module(module)
    assert len(calls) == 2 and info is not None and set(info.variables) == {"name", "size"}


REPOSITORY = Path(__file__).resolve().parents[2]
TF_FILES = sorted(
    path.relative_to(REPOSITORY)
    for folder in ("modules", "tools/tests/fixtures")
    for path in (REPOSITORY / folder).rglob("*.tf")
    if ".terraform" not in path.parts
)


@pytest.mark.parametrize("relative", TF_FILES, ids=str)
def test_the_scanner_reads_what_hcl2_parses(relative: Path) -> None:
    """Every .tf file of the repository: the scanner's declarations are python-hcl2's."""
    text = (REPOSITORY / relative).read_text()
    assert module_interface._scan(text) == module_interface._parse(text)


@pytest.mark.parametrize(
    "text",
    [
        'variable "a" {\n  type = string\n  default = "x ${jsonencode({ "k" = "}" })} y"\n}\n',
        'variable "a" {\n  description = "literal $${not} %%{this}"\n  default = {}\n}\n',
        'variable "a" {\n  # default = 1\n  /* default = 2 */\n  type = string // default\n}\n',
        'variable "a" {\n  description = <<-EOT\n    has } and " inside\n    EOT\n'
        "  default = 1\n}\n",
        'variable "a" {\n  validation {\n    condition = var.a != "{"\n    error_message = "x"\n'
        "  }\n}\n",
        'output "b" {\n  value = [for k, v in var.m : k if v == "]"]\n  sensitive = true\n}\n',
        'output "b" { value = 1 }\n',
    ],
)
def test_strings_templates_heredocs_and_comments_do_not_mislead_the_scanner(text: str) -> None:
    assert module_interface._scan(text) == module_interface._parse(text)


@pytest.mark.parametrize(
    "text",
    [
        'name = "top-level attribute"\n',
        'variable "a" {\n  default = "unterminated\n}\n',
        "}\n",
        'variable "a" {\n  description = "an interpolation: ${var.b}"\n}\n',
    ],
)
def test_the_scanner_declines_what_it_does_not_expect(text: str) -> None:
    """Declined text goes to python-hcl2, which parses it or names the error."""
    assert module_interface._scan(text) is None


def test_a_file_that_cannot_be_parsed_names_module_and_file(module: Path) -> None:
    (module / "outputs.tf").write_text('output "id" {\n  value = \n')
    info, problems = read_module(module)
    assert info is None
    assert problems[0].startswith("modules/thing/outputs.tf could not be parsed")
