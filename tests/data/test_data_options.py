"""Every option of the data module base classes works from a config, for every shipped data module.

The options checked are read from the signatures of ``GANDataModule.__init__`` (and of
``DownloadableDataModule.__init__`` for the downloadable sets), so an option added there is
checked here without editing this test. Each is set to a value other than its default in a
``data:`` config, parsed and instantiated the way ``gan-suite fit`` does it (LightningCLI's
parser, subclass mode), and must reach the data module's attribute, its hyper-parameters (what
checkpoints record in ``data_spec``) and the printed config.
"""

import importlib
import inspect
import pkgutil

import pytest
import yaml
from pytorch_lightning.cli import LightningArgumentParser

import gan_suite.data
from gan_suite.data import DATA_MODULES
from gan_suite.data.base import GANDataModule
from gan_suite.data.storage import DownloadableDataModule

#: required arguments of data modules that have some (a value is needed to build one)
REQUIRED = {"ImageFolder": {"path": "some/folder"}}


def shipped_data_modules() -> set:
    """Every public GANDataModule subclass defined in a module of ``gan_suite.data``."""
    found = set()
    for info in pkgutil.iter_modules(gan_suite.data.__path__):
        module = importlib.import_module(f"gan_suite.data.{info.name}")
        for name, obj in vars(module).items():
            if (
                isinstance(obj, type) and issubclass(obj, GANDataModule) and obj.__module__ == module.__name__
                and not name.startswith("_") and obj not in (GANDataModule, DownloadableDataModule)
            ):
                found.add(obj)
    return found


def base_options(cls) -> dict:
    """name -> a value other than the default, for each option of the bases ``cls`` derives from."""
    options = {}
    for base in (GANDataModule, DownloadableDataModule):
        if not issubclass(cls, base):
            continue
        for name, param in inspect.signature(base.__init__).parameters.items():
            if name == "self" or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
                continue
            default = param.default
            if isinstance(default, bool):
                options[name] = not default
            elif isinstance(default, int):
                options[name] = default + 3
            elif default is None:  # the only such option: a folder name
                options[name] = "a/data/root"
            else:
                raise AssertionError(f"{base.__name__}.{name}: no test value for a default of type {type(default).__name__}")
    return options


def test_every_shipped_data_module_is_registered():
    assert shipped_data_modules() == set(DATA_MODULES.values())


def test_the_downloadable_sets_share_one_base():
    downloadable = {name for name, cls in DATA_MODULES.items() if issubclass(cls, DownloadableDataModule)}
    assert downloadable == {"mnist", "fashion_mnist", "cifar10", "celeba", "stacked_mnist"}


@pytest.mark.parametrize("name", sorted(DATA_MODULES))
def test_every_base_option_reaches_the_data_module_from_a_config(name):
    cls = DATA_MODULES[name]
    options = base_options(cls)
    assert {"batch_size", "num_workers", "seed", "device_cache"} <= set(options)
    config = {"class_path": f"{cls.__module__}.{cls.__name__}", "init_args": {**REQUIRED.get(cls.__name__, {}), **options}}
    parser = LightningArgumentParser(exit_on_error=False)
    parser.add_lightning_class_args(GANDataModule, "data", subclass_mode=True)
    cfg = parser.parse_args(["--data", yaml.safe_dump(config)])
    printed = yaml.safe_load(parser.dump(cfg, skip_validation=True))["data"]["init_args"]
    datamodule = parser.instantiate_classes(cfg)["data"]
    assert type(datamodule) is cls
    for option, value in options.items():
        assert printed[option] == value, option
        assert getattr(datamodule, option) == value, option
        assert datamodule.hparams[option] == value, option


def test_a_dotted_override_sets_device_cache():
    parser = LightningArgumentParser(exit_on_error=False)
    parser.add_lightning_class_args(GANDataModule, "data", subclass_mode=True)
    cfg = parser.parse_args(["--data", "gan_suite.data.Toy2D", "--data.init_args.device_cache=true"])
    assert parser.instantiate_classes(cfg)["data"].device_cache is True
