from pathlib import Path

from benchmarks.report import write_section


def test_a_benchmark_rewrites_only_its_own_section(tmp_path: Path) -> None:
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# Benchmarks\n\n<!-- a:begin -->\nold a\n<!-- a:end -->\n\nkept\n")
    write_section("<!-- a:begin -->", "<!-- a:end -->", ["new a"], doc)
    write_section("<!-- b:begin -->", "<!-- b:end -->", ["b $1 \\1"], doc)
    assert doc.read_text() == (
        "# Benchmarks\n\n<!-- a:begin -->\nnew a\n<!-- a:end -->\n\nkept\n\n"
        "<!-- b:begin -->\nb $1 \\1\n<!-- b:end -->\n"
    )
