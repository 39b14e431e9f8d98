"""Every option of the data module base classes works from a config, for every shipped data module.

The options checked are read from the signatures of ``GANDataModule.__init__`` (and of
``DownloadableDataModule.__init__`` for the downloadable sets), so an option added there is
checked here without editing this test. Each is set to a value other than its default in a
``data:`` config, parsed and instantiated by ``gan-suite fit``'s own LightningCLI (no fit), and
must reach the data module's attribute, its hyper-parameters (what checkpoints record in
``data_spec``) and the resolved config (what ``--print_config`` shows).
"""

import importlib
import inspect
import pkgutil

import pytest
import yaml

import gan_suite.data
from gan_suite.data import DATA_MODULES
from gan_suite.data.base import GANDataModule
from gan_suite.data.storage import DownloadableDataModule
from gan_suite.training.lightning_cli import GanSuiteCLI, _parser_kwargs
from gan_suite.training.module import GANModule

#: a small model: the CLI builds one beside the data module
MODEL = ["--model", "gan_suite.models.VanillaGAN", "--model.init_args.sample_shape=[2]",
         "--model.init_args.g_hidden=[4]", "--model.init_args.d_hidden=[4]"]

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


def fit_cli(tmp_path, data_args: list) -> GanSuiteCLI:
    """``gan-suite fit`` with these data arguments, built (model, data module, Trainer) but not run."""
    args = MODEL + data_args + ["--seed_everything=false", "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}", "--trainer.enable_progress_bar=false"]
    return GanSuiteCLI(
        GANModule, GANDataModule, subclass_mode_model=True, subclass_mode_data=True, args=args, run=False,
        save_config_callback=None, auto_configure_optimizers=False, parser_kwargs=_parser_kwargs(),
    )


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
def test_every_base_option_reaches_the_data_module_from_a_config(name, tmp_path):
    cls = DATA_MODULES[name]
    options = base_options(cls)
    assert {"batch_size", "num_workers", "seed", "device_cache"} <= set(options)
    config = {"class_path": f"{cls.__module__}.{cls.__name__}", "init_args": {**REQUIRED.get(cls.__name__, {}), **options}}
    cli = fit_cli(tmp_path, ["--data", yaml.safe_dump(config)])
    printed = yaml.safe_load(cli.parser.dump(cli.config, skip_validation=True))["data"]["init_args"]
    datamodule = cli.datamodule
    assert type(datamodule) is cls
    for option, value in options.items():
        assert printed[option] == value, option
        assert getattr(datamodule, option) == value, option
        assert datamodule.hparams[option] == value, option


def test_a_dotted_override_sets_device_cache(tmp_path):
    assert fit_cli(tmp_path, ["--data", "gan_suite.data.Toy2D", "--data.init_args.device_cache=true"]).datamodule.device_cache is True


def test_a_stacked_runs_per_seed_copies_keep_every_option_of_a_config(tmp_path):
    """Stacked seeds rebuild the data module once per seed from its recorded arguments (the
    hyper-parameters, which under the CLI also hold LightningCLI's ``_class_path``)."""
    datamodule = fit_cli(tmp_path, ["--data", "gan_suite.data.Toy2D", "--data.init_args.num_samples=200", "--data.init_args.batch_size=10",
                                    "--data.init_args.num_workers=1", "--data.init_args.device_cache=true"]).datamodule
    assert "_class_path" in datamodule.hparams
    datamodule.stacked_seeds = [4, 9]
    copies = datamodule.train_dataloader().loaders
    assert len(copies) == 2
    for seed, seed_copy in zip((4, 9), copies):
        assert seed_copy.sampler.seed == seed and seed_copy.sampler.per_rank_batch == 10
        assert len(seed_copy.dataset) == 200  # device_cache: a DeviceCachedBatches over the copy's split
