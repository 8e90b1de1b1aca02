import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs_and_trains(capsys):
    text = README.read_text()
    block = re.search(r"<!-- example: start -->\s*```python\n(.*?)```\s*<!-- example: end -->", text, re.S)
    assert block, "README lost its sampler example"
    code = block.group(1)
    assert len(code.strip().splitlines()) <= 16
    namespace = {}
    exec(compile(code, str(README), "exec"), namespace)
    assert namespace["accuracy"] > 0.85
    assert "IS True" in capsys.readouterr().out, "importance sampling never switched on in the example"
