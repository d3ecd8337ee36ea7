"""CRI-O registries.conf v2: prefix matching, location rewrite, mirrors by pull-from-mirror, drop-ins."""

import pytest

from exporter.sources.registry.node.registries_conf import RegistriesConfError, find, load, locations, merge, parse

CONF = '''
[[registry]]
prefix = "docker.io"
location = "docker.io"
[[registry.mirror]]
location = "mirror.local:5000/dockerhub"
insecure = true
[[registry.mirror]]
location = "digests.local/hub"
pull-from-mirror = "digest-only"
[[registry.mirror]]
location = "tags.local/hub"
pull-from-mirror = "tag-only"

[[registry]]
prefix = "docker.io/library"
location = "library.local/lib"

[[registry]]
prefix = "*.corp.example"
[[registry.mirror]]
location = "corp-mirror.local"

[[registry]]
location = "blocked.io"
blocked = true
'''


def test_longest_prefix_wins_and_components_are_respected():
    registries = parse(CONF, "registries.conf")
    assert find(registries, "docker.io/library/nginx").prefix == "docker.io/library"
    assert find(registries, "docker.io/team/app").prefix == "docker.io"
    assert find(registries, "docker.io/librarything/app").prefix == "docker.io"  # not a path component
    assert find(registries, "quay.io/x") is None
    assert find(registries, "a.corp.example/x").prefix == "*.corp.example"
    assert find(registries, "blocked.io/x").blocked


def test_mirrors_first_filtered_by_pull_from_mirror():
    [hub] = [r for r in parse(CONF, "r") if r.prefix == "docker.io"]
    assert locations(hub, "docker.io/team/app", by_digest=False) == [
        ("mirror.local:5000/dockerhub/team/app", True), ("tags.local/hub/team/app", False),
        ("docker.io/team/app", False)]
    assert locations(hub, "docker.io/team/app", by_digest=True) == [
        ("mirror.local:5000/dockerhub/team/app", True), ("digests.local/hub/team/app", False),
        ("docker.io/team/app", False)]


def test_location_rewrite_and_wildcard():
    registries = parse(CONF, "r")
    assert locations(find(registries, "docker.io/library/nginx"), "docker.io/library/nginx", False) == [
        ("library.local/lib/nginx", False)]
    assert locations(find(registries, "a.corp.example/team/x"), "a.corp.example/team/x", False) == [
        ("corp-mirror.local/team/x", False), ("a.corp.example/team/x", False)]


def test_mirror_by_digest_only():
    [entry] = parse('[[registry]]\nlocation = "r.io"\nmirror-by-digest-only = true\n'
                    '[[registry.mirror]]\nlocation = "m.local"\n', "r")
    assert locations(entry, "r.io/x", by_digest=False) == [("r.io/x", False)]
    assert locations(entry, "r.io/x", by_digest=True) == [("m.local/x", False), ("r.io/x", False)]


@pytest.mark.parametrize("text, message", [
    ("[[registry", "not TOML"),
    ('[registries.search]\nregistries = ["docker.io"]\n', "v1 format"),
    ("[[registry]]\ninsecure = true\n", "needs a prefix or a location"),
    ('[[registry]]\nprefix = "*.x.io"\nlocation = "y.io"\n', "wildcard"),
    ('[[registry]]\nlocation = "r.io"\n[[registry.mirror]]\nlocation = "m"\npull-from-mirror = "some"\n',
     "pull-from-mirror"),
    ('[[registry]]\nlocation = "r.io"\nblocked = "yes"\n', "blocked must be true or false"),
])
def test_errors_name_the_file(text, message):
    with pytest.raises(RegistriesConfError, match="/etc/containers/registries.conf") as info:
        parse(text, "/etc/containers/registries.conf")
    assert message in str(info.value)


def test_drop_ins_come_after_and_replace_the_same_prefix(tmp_path):
    main = tmp_path / "registries.conf"
    main.write_text('[[registry]]\nlocation = "r.io"\n[[registry]]\nlocation = "keep.io"\n')
    (tmp_path / "registries.conf.d").mkdir()
    (tmp_path / "registries.conf.d" / "50-mirror.conf").write_text(
        '[[registry]]\nlocation = "r.io"\n[[registry.mirror]]\nlocation = "m.local"\n')
    registries, problems = load(main)
    assert [r.prefix for r in registries] == ["r.io", "keep.io"] and problems == []
    assert find(registries, "r.io/x").mirrors[0].location == "m.local"
    (tmp_path / "registries.conf.d" / "90-broken.conf").write_text("[[registry")
    with pytest.raises(RegistriesConfError, match="90-broken.conf: not TOML"):
        load(main)  # containers/image refuses the whole configuration then
    assert merge(parse('[[registry]]\nlocation = "a"\n', "1"), ()) == parse('[[registry]]\nlocation = "a"\n', "1")
