"""The README's commands and references point at things that exist: files and screenshots it
links, make targets, scripts/stack.py invocations, paths in its project structure."""

import re
import shlex
import sys
import unittest

from support import README, ROOT

sys.path.insert(0, str(ROOT / "scripts"))
from stack import COMPONENTS, build_parser


class Readme(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.text = README.read_text()

    def test_linked_files_exist(self):
        links = re.findall(r"\]\(([^)#\s]+)\)", self.text)
        local = [link for link in links if "://" not in link]
        self.assertTrue(local, "no local links found")
        missing = [link for link in local if not (ROOT / link).exists()]
        self.assertEqual(missing, [])

    def test_make_targets_exist(self):
        makefiles = "\n".join(p.read_text() for p in [ROOT / "Makefile", *ROOT.glob("mk/*.mk")])
        targets = set(re.findall(r"(?m)^([a-z][a-z0-9-]*):", makefiles))
        used = set(re.findall(r"\bmake ([a-z][a-z0-9-]*)", self.text))
        self.assertIn("dev", used)
        self.assertEqual(sorted(used - targets), [])

    def test_stack_commands_parse(self):
        lines = re.findall(r"python3 scripts/stack\.py ([^`\n#]+)", self.text)
        self.assertGreaterEqual(len(lines), 4)
        for line in lines:
            with self.subTest(line=line):
                args = build_parser().parse_args(shlex.split(line))
                if getattr(args, "components", None):
                    self.assertLessEqual(set(args.components.split(",")), set(COMPONENTS))

    def test_project_structure_paths_exist(self):
        section = self.text.split("## Project structure", 1)[1].split("\n## ", 1)[0]
        block = section.split("```", 2)[1]
        paths = re.findall(r"^[\s│├└─]*([\w.-]+/?)", block, re.M)
        self.assertGreater(len(paths), 10)
        # Rebuild each entry's full path from its indentation.
        stack: list[tuple[int, str]] = []
        missing = []
        for line in block.strip().splitlines()[1:]:
            match = re.match(r"^([\s│├└─]*)([\w.-]+/?)", line)
            if not match:
                continue
            depth = len(match.group(1))
            while stack and stack[-1][0] >= depth:
                stack.pop()
            path = "/".join([p for _, p in stack] + [match.group(2).rstrip("/")])
            if not (ROOT / path).exists():
                missing.append(path)
            stack.append((depth, match.group(2).rstrip("/")))
        self.assertEqual(missing, [])


if __name__ == "__main__":
    unittest.main()
