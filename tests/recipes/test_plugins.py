"""Plugins: entry points found lazily by the registries, and a recipe's ``plugins:`` modules imported
before its components are resolved (errors name ``plugins[i]`` or the component's ``name`` field)."""
from __future__ import annotations

import sys
import textwrap

import pytest

from raynas import registry as registry_module
from raynas.errors import RecipeError
from raynas.evaluators import EVALUATORS
from raynas.recipes.loader import parse_with_plugins
from raynas.registry import PLUGINS_ENV, PluginError, Registry
from raynas.space import SPACES
from raynas.strategies import STRATEGIES
from tests.recipes.plugin_dists import EXAMPLE_PACKAGE, EXAMPLE_SRC, write_dist, write_module

GROUP = "raynas.test_widgets"  # a group no real distribution declares
KIND = "widget"
WIDGET = "class Widget:\n    pass\n\ndef make():\n    return Widget()\n"


@pytest.fixture
def site(tmp_path, monkeypatch):
    """An empty site folder on ``sys.path``; modules imported from it are forgotten afterwards."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv(PLUGINS_ENV, "")  # setenv (not delenv): what a test's recipe records there is undone
    monkeypatch.setattr(registry_module, "_imported_env", set())
    saved = {reg: dict(reg._items) for reg in (SPACES, EVALUATORS, STRATEGIES)}
    before = set(sys.modules)
    yield folder
    for reg, items in saved.items():
        reg._items.clear()
        reg._items.update(items)
    for name in set(sys.modules) - before:
        if name.startswith(("plug_", EXAMPLE_PACKAGE)):
            del sys.modules[name]


def widgets() -> Registry:
    return Registry(KIND, group=GROUP)


# --- entry points --------------------------------------------------------------------------------
def test_listing_names_imports_no_plugin_and_get_loads_the_class(site):
    write_module(site, "plug_lazy", WIDGET)
    write_dist(site, "lazy-widgets", {GROUP: {"lazy": "plug_lazy:Widget"}})
    reg = widgets()
    assert reg.names() == ["lazy"] and "plug_lazy" not in sys.modules
    cls = reg.get("lazy")
    assert "plug_lazy" in sys.modules and cls is sys.modules["plug_lazy"].Widget
    assert cls.registry_name == "lazy" and "lazy" in reg and reg.get("lazy") is cls


def test_in_loads_the_entry_point_too(site):
    write_module(site, "plug_in", WIDGET)
    write_dist(site, "in-widgets", {GROUP: {"in_widget": "plug_in:Widget"}})
    reg = widgets()
    assert "in_widget" in reg and "plug_in" in sys.modules and reg._items["in_widget"].__name__ == "Widget"


def test_a_module_entry_point_registers_by_decorator(site):
    write_module(site, "plug_module", textwrap.dedent("""
        from raynas.space import SPACES

        @SPACES.register("plug_module_space")
        class ModuleSpace:
            pass
    """))
    write_dist(site, "module-spaces", {"raynas.spaces": {"plug_module_space": "plug_module"}})
    assert "plug_module_space" in SPACES.names() and "plug_module" not in sys.modules
    assert SPACES.get("plug_module_space") is sys.modules["plug_module"].ModuleSpace


def test_a_module_entry_point_registering_nothing_is_an_error(site):
    write_module(site, "plug_silent", WIDGET)
    write_dist(site, "silent-widgets", {GROUP: {"silent": "plug_silent"}})
    with pytest.raises(PluginError, match="names module plug_silent, which registered no widget 'silent'"):
        widgets().get("silent")


@pytest.mark.parametrize("source,value,message", [
    (None, "plug_missing_module:Widget", "failed to load: ModuleNotFoundError: No module named 'plug_missing_module'"),
    ("raise RuntimeError('boom')\n", "plug_boom:Widget", "failed to load: RuntimeError: boom"),
    (WIDGET, "plug_fn:NoSuchThing", "failed to load: AttributeError"),
    (WIDGET, "plug_fn2:make", "must name a class or a module, not function"),
])
def test_a_broken_entry_point_names_it_and_its_distribution(site, source, value, message):
    if source is not None:
        write_module(site, value.partition(":")[0], source)
    write_dist(site, "broken-widgets", {GROUP: {"broken": value}}, version="1.2")
    reg = widgets()
    assert reg.names() == ["broken"]  # listing still works: nothing is loaded
    with pytest.raises(PluginError) as err:
        reg.get("broken")
    text = str(err.value)
    assert text.startswith(f"widget 'broken': entry point 'broken = {value}' (group {GROUP}) of distribution "
                           "broken-widgets 1.2 ") and message in text and "\n" not in text
    with pytest.raises(PluginError):
        "broken" in reg  # noqa: B015  (never silently "not there")


def test_two_distributions_declaring_one_name_is_an_error(site):
    write_module(site, "plug_twice", WIDGET)
    write_dist(site, "first-widgets", {GROUP: {"twice": "plug_twice:Widget"}})
    write_dist(site, "second-widgets", {GROUP: {"twice": "plug_twice:Widget"}})
    with pytest.raises(PluginError, match="widget 'twice' is declared twice: .*first-widgets.* and .*second-widgets"):
        widgets().get("twice")


def test_a_registered_name_wins_and_its_entry_point_is_never_loaded(site):
    write_dist(site, "shadow-widgets", {GROUP: {"own": "plug_never_imported:Widget"}})
    reg = widgets()

    @reg.register("own")
    class Own:
        pass

    assert reg.get("own") is Own and reg.names() == ["own"] and "plug_never_imported" not in sys.modules


def test_unknown_names_list_the_entry_points_among_the_known(site):
    write_dist(site, "listed-widgets", {GROUP: {"listed": "plug_listed:Widget"}})
    with pytest.raises(KeyError, match="unknown widget 'nope'; known: listed"):
        widgets().get("nope")
    assert "plug_listed" not in sys.modules


def test_a_registry_without_a_group_has_no_plugins(site):
    write_dist(site, "ignored-widgets", {GROUP: {"ignored": "plug_ignored:Widget"}})
    assert Registry(KIND).names() == []


# --- $RAYNAS_PLUGINS (what Ray workers inherit) -------------------------------------------------
def test_a_registry_miss_imports_the_modules_of_the_environment(site, monkeypatch):
    write_module(site, "plug_env", "from raynas.space import SPACES\n\n"
                                   "@SPACES.register('plug_env_space')\nclass EnvSpace:\n    pass\n")
    monkeypatch.setenv(PLUGINS_ENV, "plug_env")
    assert "plug_env" not in sys.modules
    assert SPACES.get("plug_env_space") is sys.modules["plug_env"].EnvSpace


def test_a_broken_module_of_the_environment_names_the_variable(site, monkeypatch):
    monkeypatch.setenv(PLUGINS_ENV, "plug_env_missing")
    with pytest.raises(PluginError, match=rf"^\${PLUGINS_ENV}: no module named 'plug_env_missing'"):
        SPACES.get("anything")


# --- recipes: plugins: -----------------------------------------------------------------------------
def recipe(**extra) -> dict:
    return {"name": "plugged", "space": "chain", "evaluator": "toy_accuracy", "strategy": "hill_climb",
            "budget": {"max_candidates": 5}, **extra}


def test_plugins_are_imported_before_the_components_are_resolved(site, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE_SRC))
    assert "chain" not in SPACES.names()
    with pytest.raises(RecipeError, match="^space.name: unknown search space 'chain'"):
        parse_with_plugins(recipe())
    parsed = parse_with_plugins(recipe(plugins=[EXAMPLE_PACKAGE]))
    assert parsed.space.impl is sys.modules[f"{EXAMPLE_PACKAGE}.space"].ChainSpace
    assert parsed.plugins == [EXAMPLE_PACKAGE] and parsed.to_dict()["plugins"] == [EXAMPLE_PACKAGE]
    assert registry_module._env_plugins() == [EXAMPLE_PACKAGE]  # recorded for Ray workers


def test_an_unknown_plugin_module_names_its_index(site):
    with pytest.raises(RecipeError) as err:
        parse_with_plugins(recipe(plugins=["json", "plug_no_such_module"]))
    assert err.value.field == "plugins[1]" and "\n" not in str(err.value)
    assert str(err.value) == ("plugins[1]: no module named 'plug_no_such_module' (install it, or put it on "
                              "PYTHONPATH or in the current directory)")


@pytest.mark.parametrize("plugins,field,message", [
    ("plug_a", "plugins", "must be a list of module names, got 'plug_a'"),
    ([3], "plugins[0]", "must be a module name such as my_pkg.my_space, got 3"),
    (["json", "my-pkg"], "plugins[1]", "must be a module name such as my_pkg.my_space, got 'my-pkg'"),
])
def test_plugins_must_be_a_list_of_module_names(site, plugins, field, message):
    with pytest.raises(RecipeError) as err:
        parse_with_plugins(recipe(plugins=plugins))
    assert (err.value.field, err.value.message) == (field, message)


def test_a_plugin_failing_at_import_says_why(site):
    write_module(site, "plug_fails", "import plug_its_own_missing_dependency\n")
    with pytest.raises(RecipeError, match=r"^plugins\[0\]: module 'plug_fails' failed to import: "
                                          r"ModuleNotFoundError: No module named 'plug_its_own_missing_dependency'$"):
        parse_with_plugins(recipe(plugins=["plug_fails"]))


def test_a_broken_component_entry_point_names_the_recipe_field(site):
    write_dist(site, "broken-strategies", {"raynas.strategies": {"plug_broken": "plug_gone:Strategy"}})
    with pytest.raises(RecipeError) as err:
        parse_with_plugins(recipe(space="nb201", evaluator="cost", strategy={"name": "plug_broken"}))
    assert err.value.field == "strategy.name"
    assert "entry point 'plug_broken = plug_gone:Strategy' (group raynas.strategies) of distribution " \
           "broken-strategies 0.1.0 failed to load" in str(err.value)
