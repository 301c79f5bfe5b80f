"""scripts/uv_pip.py (`make env`): pip's configured package sources handed to uv."""
import importlib.util

from conftest import ROOT

spec = importlib.util.spec_from_file_location("uv_pip", ROOT / "scripts/uv_pip.py")
uv_pip = importlib.util.module_from_spec(spec)
spec.loader.exec_module(uv_pip)


def test_pips_sources_become_uvs_flags_and_environment():
    listing = "\n".join([
        "global.cert='/etc/ssl/certs/ca-certificates.crt'",
        "global.constraint='/etc/xdg/pip/constraints.txt'",
        "global.extra-index-url='file:///opt/pypi/simple file:///opt/pypi-more/simple'",
        "global.find-links='/opt/wheels'",
        "global.index-url='https://mirror.example.invalid/simple'",
        ":env:.default-timeout='180'",
        ":env:.find-links='/srv/wheels'",  # the environment wins over the files, as in pip
    ])
    flags, env = uv_pip.uv_arguments(uv_pip.pip_settings(listing))
    assert flags == ["--index-strategy", "unsafe-best-match", "--index-url", "https://mirror.example.invalid/simple",
                     "--extra-index-url", "file:///opt/pypi/simple", "--extra-index-url", "file:///opt/pypi-more/simple",
                     "--find-links", "/srv/wheels"]
    assert env == {"SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt", "UV_HTTP_TIMEOUT": "180"}


def test_no_pip_configuration_gives_pips_default_choice_only():
    assert uv_pip.uv_arguments(uv_pip.pip_settings("")) == (["--index-strategy", "unsafe-best-match"], {})
    flags, _ = uv_pip.uv_arguments(uv_pip.pip_settings("global.no-index='true'"))
    assert flags[-1] == "--no-index"


def test_the_command_is_uv_pip_for_the_venvs_python_with_the_flags_before_the_arguments():
    flags = ["--index-strategy", "unsafe-best-match"]
    assert uv_pip.uv_command("uv", ["install", "-r", "req.txt"], "py", flags) == [
        "uv", "pip", "install", "--python", "py", *flags, "-r", "req.txt"]
