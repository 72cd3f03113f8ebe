"""Many tasks on one frozen DyT network: each sample of a mixed batch computes what its task's
own model computes in sparse mode; tasks are added, removed and replaced at run time."""
import copy

import pytest
import torch
from torch import nn

from dyt_mm.models.dyt import DyTSwin, DyTViT, MultiTaskDyT, dyt_mode
from dyt_mm.models.dyt.network import DyTOutput
from dyt_mm.models.dyt.site import SiteCapacity

TINY = dict(arch=dict(embed_dims=64, depth=3, num_heads=2), img_size=32, patch_size=8)


def randomise_task_parts(network: nn.Module, seed: int) -> nn.Module:
    """A trained-looking task: non-zero adapters, LoRA and gates, and threshold offsets that
    keep about half the tokens."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in network.named_parameters():
            if network.is_dyt_param(name):
                param.copy_(torch.randn(param.shape, generator=generator) * 0.2)
        for module in network.modules():  # per-task calibration: each its own offsets
            if hasattr(module, 'threshold_offset'):
                module.threshold_offset.fill_(torch.rand((), generator=generator) - 0.5)
    return network.eval()


def task_networks(base: nn.Module, count: int, **variants) -> list:
    """``count`` single-task networks on ``base``'s frozen weights, each with its own parts."""
    networks = []
    for i in range(count):
        network = type(base)(**variants)
        network.load_state_dict(base.state_dict(), strict=False)
        networks.append(randomise_task_parts(network, seed=i + 1))
    return networks


def single_task_outputs(networks, images, tasks):
    """Each image through its own task's network, in sparse mode, with the other images of
    that task (as a single-task server would batch them)."""
    out = {}
    for t, network in enumerate(networks):
        rows = [i for i, task in enumerate(tasks) if task == f't{t}']
        if rows:
            with dyt_mode(network, 'sparse'), torch.no_grad():
                result = network(images[rows])
            for j, i in enumerate(rows):
                out[i] = (result.tokens[j], result.masks[j],
                          [h[j] for h in result.hidden_states])
    return [out[i] for i in range(images.shape[0])]


def served(networks):
    """A multi-task model of deep copies of the networks (the originals stay references)."""
    copies = [copy.deepcopy(n) for n in networks]
    model = MultiTaskDyT(copies[0], 't0', source='t0.pth')
    for t, network in enumerate(copies[1:], start=1):
        model.add_task(f't{t}', network, source=f't{t}.pth')
    return model.eval()


def check_exact(model, networks, images, tasks):
    with dyt_mode(model.network, 'sparse'), torch.no_grad():
        mixed = model(images, tasks)
    assert isinstance(mixed, DyTOutput)
    for i, (tokens, masks, hidden) in enumerate(single_task_outputs(networks, images, tasks)):
        torch.testing.assert_close(mixed.tokens[i], tokens, rtol=0, atol=1e-5)
        assert torch.equal(mixed.masks[i], masks)
        for mine, theirs in zip(mixed.hidden_states, hidden, strict=True):
            torch.testing.assert_close(mine[i], theirs, rtol=0, atol=1e-5)
    return mixed


TASKS = ['t2', 't0', 't1', 't0', 't2', 't2', 't1', 't0']

VIT_CASES = {
    'adapter-mlp': dict(),
    # what a segmentation neck reads: raw block outputs, no class token
    'seg-features': dict(class_token=False, out_indices=(0, 1, 2), final_norm=False),
    'moe-adapter': dict(adapter=dict(type='MoEAdapter', num_experts=2, bottleneck=8)),
    'lora-qv': dict(adapter=dict(type='LoRA', rank=8)),
    'lora-all-attn_mlp': dict(variant='attn_mlp',
                              adapter=dict(type='LoRA', rank=4,
                                           targets=('q', 'k', 'v', 'proj', 'fc1', 'fc2'))),
    'adapter-attn': dict(variant='attn'),
    'adapter-layer': dict(variant='layer'),
    'tome': dict(merge=dict(r=2)),
    'vitdet-windows': dict(class_token=False, window_size=2, global_blocks=(1, ), img_size=48),
    'sample-dispatch': dict(dispatch=dict(type='SampleDispatcher')),
}


@pytest.mark.parametrize('case', list(VIT_CASES))
def test_mixed_batch_equals_each_task_model(case, single_thread):
    options = dict(TINY, **VIT_CASES[case])
    torch.manual_seed(0)
    base = DyTViT(**options)
    networks = task_networks(base, 3, **options)
    size = options['img_size']
    images = torch.randn(len(TASKS), 3, size, size)
    mixed = check_exact(served(networks), networks, images, TASKS)
    kept = mixed.masks.float().mean()
    assert 0.05 < kept < 0.95 or case == 'sample-dispatch'  # dispatch really skipped tokens


def test_swin_mixed_batch_equals_each_task_model(single_thread):
    options = dict(arch=dict(embed_dims=32, depths=(2, 2), num_heads=(2, 4)), img_size=32,
                   patch_size=4, window_size=4)
    torch.manual_seed(0)
    base = DyTSwin(**options)
    networks = task_networks(base, 2, **options)
    check_exact(served(networks), networks, torch.randn(5, 3, 32, 32),
                ['t1', 't0', 't1', 't1', 't0'])


@pytest.fixture(scope='module')
def three_tasks():
    torch.manual_seed(0)
    base = DyTViT(**TINY)
    return base, task_networks(base, 3, **TINY)


def test_tasks_keep_their_own_threshold_offsets(three_tasks, single_thread):
    _, networks = three_tasks
    model = served(networks)
    offsets = {t: model.network.blocks[0].dispatchers['mlp'].by_task[t].threshold_offset.item()
               for t in model.tasks}
    assert offsets == {f't{i}': n.blocks[0].dispatchers['mlp'].threshold_offset.item()
                       for i, n in enumerate(networks)}
    assert len(set(offsets.values())) == 3


def test_hot_swap_add_remove_replace_without_touching_the_base(three_tasks, single_thread):
    _, networks = three_tasks
    model = MultiTaskDyT(copy.deepcopy(networks[0]), 't0', source='t0.pth').eval()
    base = {k: v.data_ptr() for k, v in model.network.named_parameters()
            if '.dispatchers.' not in k and '.adapters.' not in k}
    images = torch.randn(6, 3, 32, 32)
    model.add_task('t1', copy.deepcopy(networks[1]))
    model.add_task('t2', copy.deepcopy(networks[2]))
    tasks = ['t0', 't1', 't2', 't2', 't1', 't0']
    check_exact(model, networks, images, tasks)
    model.remove_task('t1')
    assert model.tasks == ('t0', 't2')
    with pytest.raises(ValueError, match="unknown task 't1'; served: t0, t2"):
        model(images, tasks)
    # t2 now serves what t1 was: the same weights give the same outputs as t1's model
    model.replace_task('t2', copy.deepcopy(networks[1]))
    model.add_task('t1', copy.deepcopy(networks[2]))
    swapped = ['t0', 't2', 't1', 't1', 't2', 't0']
    with dyt_mode(model.network, 'sparse'), torch.no_grad():
        mixed = model(images, swapped)
    expected = single_task_outputs(networks, images, tasks)
    for i in range(6):
        torch.testing.assert_close(mixed.tokens[i], expected[i][0], rtol=0, atol=1e-5)
    after = {k: v.data_ptr() for k, v in model.network.named_parameters()
             if '.dispatchers.' not in k and '.adapters.' not in k}
    assert after == base  # the very same base tensors, never rebuilt or reloaded
    with pytest.raises(ValueError, match="task 't0' is already served"):
        model.add_task('t0', copy.deepcopy(networks[1]))


def test_memory_is_the_base_once_plus_each_task(three_tasks):
    _, networks = three_tasks
    model = served(networks)
    memory = model.memory()
    whole = sum(t.numel() * t.element_size()
                for t in list(networks[0].parameters()) + list(networks[0].buffers()))
    assert memory['base'] + memory['tasks']['t0'] == whole
    assert memory['total'] == memory['base'] + sum(memory['tasks'].values())
    assert memory['separate'] == 3 * memory['base'] + sum(memory['tasks'].values())
    head = nn.Linear(64, 10)
    model.add_task('t3', copy.deepcopy(networks[0]), head=head)
    assert model.task_bytes('t3') == memory['tasks']['t0'] + 4 * (64 * 10 + 10)
    assert model.head('t3') is head and model.head('t0') is None


def test_a_different_base_is_refused_naming_the_tensor_and_both_files(three_tasks):
    _, networks = three_tasks
    model = served(networks[:1])
    other = copy.deepcopy(networks[1])
    with torch.no_grad():
        other.blocks[1].mlp.fc2.weight[0, 0] += 1e-3
    with pytest.raises(ValueError, match=r"other\.pth has a different base than t0\.pth: the "
                       r"first differing tensor is 'blocks\.1\.mlp\.fc2\.weight' \(different "
                       r"values\)"):
        model.add_task('t1', other, source='other.pth')
    wider = DyTViT(**dict(TINY, arch=dict(embed_dims=64, depth=3, num_heads=4)))
    with pytest.raises(ValueError, match=r"heads\.pth has num_heads=4, the shared network 2"):
        model.add_task('t1', wider, source='heads.pth')
    deeper = DyTViT(**dict(TINY, arch=dict(embed_dims=64, depth=4, num_heads=2)))
    with pytest.raises(ValueError, match='deeper.pth holds a DyT ViT'):
        model.add_task('t1', deeper, source='deeper.pth')
    attn = DyTViT(**dict(TINY, variant='attn'))
    with pytest.raises(ValueError, match=r"attn\.pth has sites=.*'attn'"):
        model.add_task('t1', attn, source='attn.pth')
    assert model.tasks == ('t0', )  # nothing half-added


def test_what_a_mixed_batch_cannot_route_is_refused(three_tasks):
    _, networks = three_tasks
    model = served(networks[:2])
    vpt = DyTViT(**dict(TINY, adapter=dict(type='VPTPrompts', num_prompts=2)))
    vpt.load_state_dict(networks[0].state_dict(), strict=False)
    with pytest.raises(ValueError, match='VPTPrompts .* cannot route: prompts change'):
        model.add_task('vpt', vpt, source='vpt.pth')
    images = torch.randn(2, 3, 32, 32)
    with pytest.raises(ValueError, match=r"one task name per image: 2 images, tasks=\['t0'\]"):
        model(images, ['t0'])
    for block in model.network.blocks:
        block.capacities['mlp'] = SiteCapacity(4)
    with dyt_mode(model.network, 'capacity'), pytest.raises(
            ValueError, match="'capacity' mode's K is calibrated per model, not per task"):
        model(images, ['t0', 't1'])
    with pytest.raises(ValueError, match='cannot be merged'):
        served([task_networks(DyTViT(**dict(TINY, adapter=dict(type='LoRA'))), 1,
                              **dict(TINY, adapter=dict(type='LoRA')))[0]]).network.merge_adapters()


# ---------------------------------------------------------------- the toolbox level (mmpretrain)
def randomised_checkpoint(model: nn.Module, path: str, seed: int) -> str:
    """``model`` with its own trained-looking DyT parts and head, saved as a full checkpoint."""
    randomise_task_parts(model.backbone.vit, seed)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.head.parameters():
            param.copy_(torch.randn(param.shape, generator=generator))
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path


@pytest.fixture(scope='module')
def classifier_tasks(digits_root, tmp_path_factory):
    """Three digits classifiers on one random frozen base, as (config, checkpoint) pairs."""
    from helpers import tiny_digits_cfg

    from dyt_mm.apis import init_model
    work = tmp_path_factory.mktemp('multitask')
    cfg = tiny_digits_cfg(digits_root, str(work))
    torch.manual_seed(0)
    base = init_model(cfg, None).state_dict()
    pairs = []
    for i in range(3):
        model = init_model(cfg, None)
        model.load_state_dict(base)
        pairs.append((cfg, randomised_checkpoint(model, str(work / f'task{i}.pth'), i + 1)))
    return pairs


def digit_files(root: str, count: int) -> list:
    import glob
    return sorted(glob.glob(f'{root}/target/val/*/*.png'))[:count]


def test_inference_serves_each_file_in_its_task_format(classifier_tasks, digits_root):
    from dyt_mm.apis import inference, init_model, init_multitask_model
    model = init_multitask_model(classifier_tasks, names=['a', 'b', 'c'])
    files = digit_files(digits_root, 6)
    tasks = ['c', 'a', 'b', 'a', 'c', 'b']
    mixed = inference(model, files, tasks=tasks)
    singles = {name: init_model(*pair) for name, pair in zip('abc', classifier_tasks)}
    for path, task, sample in zip(files, tasks, mixed):
        own = inference(singles[task], path)
        torch.testing.assert_close(sample.pred_score, own.pred_score, rtol=0, atol=1e-5)
        assert torch.equal(sample.keep_rates, own.keep_rates)
        assert sample.gflops == pytest.approx(own.gflops, rel=1e-9)
    assert 0 < mixed[0].keep_rates.mean() < 1
    alone = inference(model, files[2], tasks='b')  # one file: one sample back
    torch.testing.assert_close(alone.pred_score, mixed[2].pred_score, rtol=0, atol=1e-5)
    # the task decides: the same file under another task's parts scores differently
    assert not torch.allclose(inference(model, files[0], tasks='a').pred_score,
                              mixed[0].pred_score)
    with pytest.raises(ValueError, match=r"needs the task of each file: 2 file\(s\), "
                       r"tasks=\['a'\]; served: a, b, c"):
        inference(model, files[:2], tasks=['a'])
    with pytest.raises(ValueError, match="unknown task 'd'; served: a, b, c"):
        inference(model, files[:1], tasks=['d'])
    with pytest.raises(ValueError, match='tasks= is for a multi-task model'):
        inference(singles['a'], files[0], tasks=['a'])


def test_a_checkpoint_of_another_base_is_refused_naming_both_files(classifier_tasks, tmp_path):
    from dyt_mm.apis import init_model, init_multitask_model
    cfg, checkpoint = classifier_tasks[1]
    other = init_model(cfg, checkpoint)
    with torch.no_grad():
        other.backbone.vit.pos_embed[0, 3, 5] += 0.5
    bad = str(tmp_path / 'other_base.pth')
    torch.save({'state_dict': other.state_dict(), 'meta': {}}, bad)
    with pytest.raises(ValueError, match=rf"{bad} has a different base than "
                       rf"{classifier_tasks[0][1]}: the first differing tensor is 'pos_embed'"):
        init_multitask_model([classifier_tasks[0], (cfg, bad)])


# ---------------------------------------------------------------- the benchmark tool
def test_benchmark_tool_times_the_three_ways_and_reports_memory(capsys, single_thread):
    import importlib.util
    import json

    from helpers import REPO
    spec = importlib.util.spec_from_file_location(
        'benchmark_multitask', f'{REPO}/tools/analysis/benchmark_multitask.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.main(['--arch', 'tiny', '--depth', '2', '--img-size', '32', '--patch-size', '8',
               '--tasks', '2', '--batch-size', '4', '--num-iters', '1', '--warmup', '0',
               '--adapter', 'LoRA'])
    table, line = capsys.readouterr().out.rstrip().rsplit('\n', 1)
    report = json.loads(line)
    assert 'mixed: 2 tasks in one batch of 4' in table and 'sequential: 2 models x 2' in table
    for run in ('mixed', 'sequential', 'single'):
        assert report[f'keep_rate_{run}'] == pytest.approx(0.5, abs=0.1)  # calibrated
        assert report[f'throughput_{run}'] > 0
    memory = report['memory']
    assert memory['separate'] == 2 * memory['base'] + sum(memory['tasks'].values())
    assert memory['ratio'] == pytest.approx(memory['total'] / memory['separate'])
    with pytest.raises(SystemExit):
        tool.parse_args(['--tasks', '3', '--batch-size', '32'])
    assert 'must divide among the 3 tasks' in capsys.readouterr().err


def test_frames_of_clips_follow_their_clip_task(three_tasks, single_thread):
    """A video backbone folds T frames per clip into the network's batch (clip-major): the
    routing given per clip covers its frames, as mmaction's backbone runs them."""
    _, networks = three_tasks
    model = served(networks)
    clips, frames = ['t1', 't1', 't0', 't2'], 3
    images = torch.randn(len(clips) * frames, 3, 32, 32)
    with dyt_mode(model.network, 'sparse'), torch.no_grad(), model.routing(clips):
        mixed = model.network(images)
    per_frame = [task for task in clips for _ in range(frames)]
    for i, (tokens, masks, _) in enumerate(single_task_outputs(networks, images, per_frame)):
        torch.testing.assert_close(mixed.tokens[i], tokens, rtol=0, atol=1e-5)
        assert torch.equal(mixed.masks[i], masks)
    with pytest.raises(ValueError, match='routing\\(\\) needs the samples of each task '
                       'contiguous'), model.routing(['t0', 't1', 't0']):
        pass


def test_demo_domains_are_the_digits_target_through_a_transform(digits_root, tmp_path):
    from PIL import Image, ImageOps

    from dyt_mm.demo.multitask import val_files, write_domains
    roots = write_domains(digits_root, str(tmp_path), ['mirrored'])
    files = val_files(roots['mirrored'])
    original = files[0].replace(roots['mirrored'], digits_root)
    with Image.open(files[0]) as mirrored, Image.open(original) as target:
        assert mirrored.tobytes() == ImageOps.mirror(target.convert('RGB')).tobytes()
    assert len(files) == len(val_files(digits_root))  # every image, in its label's folder
    with pytest.raises(ValueError, match=r"unknown domain\(s\) \['rotated'\]; allowed: target"):
        write_domains(digits_root, str(tmp_path), ['rotated'])
