"""The model zoo's metafiles: one entry per config, up to date with their generator, and
found by ``mim search`` in an installed copy."""
import importlib.util
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import yaml
from helpers import REPO

from dyt_mm.analysis import paper_tables
from dyt_mm.analysis.metafiles import entries, generate, runnable_configs, stale

MAKE_METAFILES = osp.join(REPO, 'tools/misc/make_metafiles.py')


def test_the_checked_in_metafiles_are_up_to_date():
    out_of_date = stale(REPO)
    assert out_of_date == [], (f'{out_of_date} differ from the generator\'s; run '
                               'python tools/misc/make_metafiles.py')


def test_every_config_has_one_entry_and_every_entry_a_config():
    listed = entries(osp.join(REPO, 'model-index.yml'))
    configs = runnable_configs(REPO)
    assert sorted(listed.values()) == configs
    assert all(name == osp.splitext(osp.basename(cfg))[0] for name, cfg in listed.items())


def test_no_entry_claims_weights_and_paper_figures_are_joined_to_their_configs():
    files = generate(REPO)
    models = {m['Name']: m for path, text in files.items() if path != 'model-index.yml'
              for m in yaml.safe_load(text)['Models']}
    assert not any('Weights' in m for m in models.values())
    # Table 3's DyT r = 0.5 row: the paper's FLOPs and params, and its CIFAR-100 accuracy
    row = next(r for r in paper_tables.ROWS if r['key'] == 't3-dyt-r0.5')
    for task, accuracy in (('cifar100', 73.6), ('smallnorb-elev', 44.3)):
        model = models[f'dyt-r0.5_vit-b16-in21k_vtab1k-{task}']
        assert model['Metadata']['FLOPs (G)'] == float(row['gflops'])
        assert model['Metadata']['Trainable Parameters (M)'] == float(row['params'])
        assert model['Results'][0]['Metrics'] == {'Top 1 Accuracy': accuracy}
    det = models['dyt-moe4-r0.5_mask-rcnn_vit-b16-in21k_simple-fpn_1x_coco']
    assert [r['Metrics'] for r in det['Results']] == [{'box AP': 40.97}, {'mask AP': 37.11}]
    assert 'Results' not in models['dyt-r0.5_clip-b16-openai_cifar100']  # no paper row


@pytest.fixture
def copied_checkout(tmp_path):
    shutil.copytree(osp.join(REPO, 'configs'), tmp_path / 'configs')
    shutil.copy(osp.join(REPO, 'model-index.yml'), tmp_path)
    return tmp_path


def run_generator(root, *args) -> int:
    """tools/misc/make_metafiles.py's main, in this process (its imports take seconds)."""
    spec = importlib.util.spec_from_file_location('make_metafiles', MAKE_METAFILES)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool.main(['--root', str(root), *args])


def test_check_fails_on_a_new_config_until_regenerated_and_a_removed_one_leaves_no_entry(
        copied_checkout, capsys):
    image = copied_checkout / 'configs/image'
    shutil.copy(image / 'dyt-r0.5_vit-b16-in21k_svhn.py', image / 'dyt-r0.6_vit-b16-in21k_svhn.py')
    os.remove(copied_checkout / 'configs/seg/demo/vit-tiny-p8_upernet_shapes-source.py')
    assert run_generator(copied_checkout, '--check') == 1
    printed = capsys.readouterr().out
    assert 'out of date: configs/image/metafile.yml' in printed
    assert 'out of date: configs/seg/metafile.yml' in printed
    assert run_generator(copied_checkout) == 0
    assert sorted(capsys.readouterr().out.split()) == sorted(
        ['wrote', 'configs/image/metafile.yml', 'wrote', 'configs/seg/metafile.yml'])
    assert run_generator(copied_checkout, '--check') == 0
    listed = entries(str(copied_checkout / 'model-index.yml'))
    assert listed['dyt-r0.6_vit-b16-in21k_svhn'] == 'configs/image/dyt-r0.6_vit-b16-in21k_svhn.py'
    assert 'vit-tiny-p8_upernet_shapes-source' not in listed


def test_an_unknown_method_and_a_paper_result_without_config_are_named(copied_checkout):
    image = copied_checkout / 'configs/image'
    shutil.copy(image / 'full_vit-b16-in21k_svhn.py', image / 'bitfit_vit-b16-in21k_svhn.py')
    with pytest.raises(ValueError, match="configs/image/bitfit_vit-b16-in21k_svhn.py: its "
                       "method 'bitfit' starts with none of the known ones"):
        generate(str(copied_checkout))
    os.remove(image / 'bitfit_vit-b16-in21k_svhn.py')
    os.remove(copied_checkout / 'configs/det/full_mask-rcnn_vit-b16-in21k_simple-fpn_1x_coco.py')
    with pytest.raises(ValueError, match='paper results for configs that do not exist: '
                       'configs/det/full_mask-rcnn_vit-b16-in21k_simple-fpn_1x_coco.py'):
        generate(str(copied_checkout))


def test_mim_search_lists_the_models_of_an_installed_copy(tmp_path):
    site = tmp_path / 'site'
    pip = subprocess.run([sys.executable, '-m', 'pip', '--disable-pip-version-check', 'install',
                          '-q', '--no-deps', '--no-build-isolation', '--target', str(site), REPO],
                         capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr
    assert (site / 'dyt_mm/.mim/model-index.yml').is_file()
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    env = dict(os.environ, PYTHONPATH=str(site))
    shown = subprocess.run([mim, 'search', 'dyt_mm', '--model', 'dyt-moe'],
                           capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    moe = [c for c in runnable_configs(REPO) if osp.basename(c).startswith('dyt-moe')]
    assert shown.stdout.count('config id: ') == len(moe) > 0
    assert 'none ship' in shown.stdout
    assert 'coco/box_ap                            40.97' in shown.stdout  # the paper's Table 11
