"""The code fingerprint that keeps a persisted checkpoint from outliving its code."""

from lifting.provenance import code_digest


def make_package(root):
    (root / "models").mkdir(parents=True)
    (root / "train.py").write_text("LR = 1e-3\n")
    (root / "models" / "net.py").write_text("WIDTH = 256\n")
    (root / "notes.txt").write_text("not code\n")
    return root


def test_the_digest_follows_every_python_file_and_the_extra_files(tmp_path):
    package = make_package(tmp_path / "pkg")
    stage = tmp_path / "stage.py"
    stage.write_text("main()\n")
    first = code_digest(stage, package=package)
    assert first == code_digest(stage, package=package)
    assert len(first) == 64 and first != code_digest(package=package)

    (package / "notes.txt").write_text("edited\n")
    assert code_digest(stage, package=package) == first  # only code counts
    (package / "models" / "net.py").write_text("WIDTH = 128\n")
    changed = code_digest(stage, package=package)
    assert changed != first
    (package / "models" / "net.py").rename(package / "models" / "other.py")
    renamed = code_digest(stage, package=package)
    assert renamed not in (first, changed)  # a rename counts too
    stage.write_text("main(fast=True)\n")
    assert code_digest(stage, package=package) not in (first, changed, renamed)
