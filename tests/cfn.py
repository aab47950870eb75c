"""infra/aws/template.yaml as data, for the tests that check what the deployment promises."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "infra" / "aws" / "template.yaml"
FUNCTIONS = ROOT / "infra" / "aws" / "functions"


class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub, ...) kept as {tag: value}."""


def _tag(loader, suffix, node):
    value = (loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode)
             else loader.construct_sequence(node, deep=True) if isinstance(node, yaml.SequenceNode)
             else loader.construct_mapping(node, deep=True))
    return {suffix: value}


CfnLoader.add_multi_constructor("!", _tag)
DOC = yaml.load(TEMPLATE.read_text(), Loader=CfnLoader)
RES = DOC["Resources"]


def load_function(name: str):
    """infra/aws/functions/<name>/app.py as a module (a Lambda zip's code, not a pixdex package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"pixdex_fn_{name}", FUNCTIONS / name / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
