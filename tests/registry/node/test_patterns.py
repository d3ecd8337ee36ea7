"""matchImages and auth keys, by the kubelet's rules (its own URLsMatch test table, in substance)."""

import pytest

from exporter.sources.registry.node.patterns import PatternError, matches, parse


@pytest.mark.parametrize("pattern, image, expected", [
    ("*.kubernetes.io", "prefix.kubernetes.io/image", True),
    ("*.kubernetes.io", "kubernetes.io/image", False),  # not the same number of host parts
    ("*.*.kubernetes.io", "a.b.kubernetes.io/image", True),
    ("*.dkr.ecr.*.amazonaws.com", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app", True),
    ("*.dkr.ecr.*.amazonaws.com", "123456789012.dkr.ecr.eu-west-1.amazonaws.com.cn/app", False),
    ("*.azurecr.io", "team.azurecr.io/app", True),
    ("registry.io", "registry.io/app", True),
    ("registry.io", "registry.io:5000/app", False),  # a port must be equal, absent included
    ("registry.io:5000", "registry.io:5000/app", True),
    ("registry.io:5000", "registry.io:5001/app", False),
    ("registry.io/team", "registry.io/team/app", True),
    ("registry.io/team", "registry.io/other/app", False),
    ("registry.io/team", "registry.io/teams/app", True),  # the kubelet's plain string prefix
    ("https://registry.io/team", "registry.io/team/app", True),
    ("REGISTRY.io", "registry.io/app", True),
    ("127.0.0.1:5000", "127.0.0.1:5000/team/app", True),
    ("docker.io", "docker.io/library/nginx", True),
    ("*", "docker.io/library/nginx", False),
    ("*.*", "docker.io/library/nginx", True),
    ("[::1]:5000", "[::1]:5000/x", True),
])
def test_kubelet_matching(pattern, image, expected):
    assert matches(pattern, image) is expected


@pytest.mark.parametrize("bad", ["", "/path", "host:port/x", "a..b"])
def test_bad_patterns_are_refused_with_the_pattern_named(bad):
    with pytest.raises(PatternError):
        parse(bad)
