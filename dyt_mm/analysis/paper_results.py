"""The paper's task metrics (accuracy, mIoU, AP) for the configs that reproduce a row of
its tables (DyT, NeurIPS 2024; figures copied from Tables 1, 3, 6, 7, 10, 11, 17, 18 and
19, as printed). The model zoo metafiles (``tools/misc/make_metafiles.py``) list them
beside :mod:`.paper_tables`' parameter and FLOPs figures; they are the paper's results,
not ones of a model we trained (no trained weights ship).

:func:`paper_metrics` maps a config (relative to the checkout) to its metrics; a config
with no row in these tables has none.
"""
from typing import Dict, Tuple

# VTAB-1K's 19 tasks in the paper's column order (Natural 7 | Specialized 4 | Structured 8),
# spelled as the config names spell them (``..._vtab1k-<task>.py``)
VTAB_TASKS = ('cifar100', 'caltech101', 'dtd', 'flowers102', 'pets', 'svhn', 'sun397',
              'camelyon', 'eurosat', 'resisc45', 'retinopathy',
              'clevr-count', 'clevr-dist', 'dmlab', 'kitti-dist', 'dsprites-loc', 'dsprites-ori',
              'smallnorb-azim', 'smallnorb-elev')

# Table 3 (ViT-B/16, d = 8) and Table 19 (ViT-L/16): config prefix -> 19 accuracies
VTAB1K = {
    'full_vit-b16-in21k': '68.9 87.7 64.3 97.2 86.9 87.4 38.8 79.7 95.7 84.2 73.9 '
                          '56.3 58.6 41.7 65.5 57.5 46.7 25.7 29.1',
    'linear-probe_vit-b16-in21k': '63.4 85.0 63.2 97.0 86.3 36.6 51.0 78.5 87.5 68.6 74.0 '
                                  '34.3 30.6 33.2 55.4 12.5 20.0 9.6 19.2',
    'lora-r8_vit-b16-in21k': '67.1 91.4 69.4 98.8 90.4 85.3 54.0 84.9 95.3 84.4 73.6 '
                             '82.9 69.2 49.8 78.5 75.7 47.1 31.0 44.0',
    'vpt-deep_vit-b16-in21k': '78.8 90.8 65.8 98.0 88.3 78.1 49.6 81.8 96.1 83.4 68.4 '
                              '68.5 60.0 46.5 72.8 73.6 47.9 32.9 37.8',
    'adaptformer-d8_vit-b16-in21k': '70.8 91.2 70.5 99.1 90.9 86.6 54.8 83.0 95.8 84.4 76.3 '
                                    '81.9 64.3 49.3 80.3 76.3 45.7 31.7 41.1',
    'dyt-r0.5_vit-b16-in21k': '73.6 94.8 73.0 99.1 91.4 87.0 56.4 87.3 96.1 85.6 76.7 '
                              '82.8 63.8 52.7 83.7 83.6 57.3 34.6 44.3',
    'dyt-r0.7_vit-b16-in21k': '74.4 95.5 73.6 99.2 91.7 87.5 57.4 88.3 96.1 86.7 76.7 '
                              '83.5 63.8 52.9 83.1 85.7 54.9 34.3 45.9',
    'dyt-r0.9_vit-b16-in21k': '74.3 94.9 73.1 99.2 91.4 87.8 57.1 87.9 96.1 85.9 76.0 '
                              '83.3 64.8 51.5 83.4 84.0 54.8 35.1 46.4',
    'dyt-r0.5_vit-l16-in21k': '79.1 95.6 74.5 99.5 92.6 90.8 59.3 86.9 96.6 87.2 76.5 '
                              '84.5 62.9 53.3 83.5 88.4 57.3 38.7 44.6',
}

# complete image data sets, in the order of the second argument of each table below
TABLE6_IMAGE = ('cifar100', 'svhn', 'food101', 'fgvc-aircraft', 'oxford-pets', 'stanford-cars')
TABLE17_18 = ('cifar100', 'svhn', 'food101')
IMAGE = {
    # Table 6 (ViT-B/16, d = 64)
    'full_vit-b16-in21k': (TABLE6_IMAGE, '90.91 97.29 90.69 80.53 93.11 88.71'),
    'linear-probe_vit-b16-in21k': (TABLE6_IMAGE, '85.87 56.29 88.07 40.51 92.78 52.85'),
    'dynamic-full-paper-r0.5_vit-b16-in21k': (TABLE6_IMAGE, '83.43 96.90 84.46 62.50 75.16 70.48'),
    'adaptformer-d64_vit-b16-in21k': (TABLE6_IMAGE, '92.03 97.23 90.84 78.23 94.46 87.33'),
    'lora-r32_vit-b16-in21k': (TABLE6_IMAGE, '91.42 97.36 90.48 76.32 93.62 87.00'),
    'vpt-deep-p8_vit-b16-in21k': (TABLE6_IMAGE, '91.46 95.72 90.41 68.91 93.92 80.72'),
    'dyt-r0.5_vit-b16-in21k': (TABLE6_IMAGE, '91.37 97.08 90.32 78.92 94.45 87.80'),
    'dyt-moe4-r0.5_vit-b16-in21k': (TABLE6_IMAGE, '91.01 96.90 89.77 78.27 93.85 87.61'),
    # Table 1 (dispatch variants) and Table 7 (dispatch level and strategy)
    'dyt-attn-r0.5_vit-b16-in21k': (TABLE17_18, '84.58 96.55 86.67'),
    'dyt-attnmlp-r0.7_vit-b16-in21k': (TABLE17_18, '90.03 96.66 88.61'),
    'dyt-layer-r0.7_vit-b16-in21k': (TABLE17_18, '89.38 96.57 89.05'),
    'dyt-sample-r0.5_vit-b16-in21k': (TABLE17_18, '90.70 97.29 89.8'),
    'dyt-random-r0.5_vit-b16-in21k': (TABLE17_18, '89.38 96.79 86.39'),
    'dyt-sample-random-r0.5_vit-b16-in21k': (TABLE17_18, '87.15 97.07 85.26'),
    # Table 17 (Swin-B, d = 64)
    'dyt-r0.1_swin-b-in22k': (TABLE17_18, '90.55 97.43 89.84'),
    'dyt-r0.3_swin-b-in22k': (TABLE17_18, '91.26 97.38 90.66'),
    'dyt-r0.5_swin-b-in22k': (TABLE17_18, '91.62 97.40 91.30'),
    'dyt-r0.7_swin-b-in22k': (TABLE17_18, '92.14 97.21 91.96'),
    'dyt-r0.9_swin-b-in22k': (TABLE17_18, '92.31 97.37 92.21'),
    # Table 18 (ViT-L/16, d = 64)
    'dyt-r0.1_vit-l16-in21k': (TABLE17_18, '91.26 97.04 89.98'),
    'dyt-r0.3_vit-l16-in21k': (TABLE17_18, '92.66 97.27 90.85'),
    'dyt-r0.5_vit-l16-in21k': (TABLE17_18, '93.49 97.38 91.49'),
    'dyt-r0.7_vit-l16-in21k': (TABLE17_18, '93.28 97.25 91.60'),
    'dyt-r0.9_vit-l16-in21k': (TABLE17_18, '93.44 97.23 91.59'),
}

# Table 6, video (ViT-B/16, 8 frames): method -> (Kinetics-400, SSv2) top-1
VIDEO = {
    'full': '75.48 45.22', 'linear-probe': '69.04 27.64', 'dynamic-full-paper-r0.5': '74.63 44.94',
    'adaptformer-d64': '75.53 45.36', 'lora-r32': '75.48 45.62', 'vpt-deep-p8': '73.46 38.17',
    'dyt-r0.5': '75.28 45.43', 'dyt-moe4-r0.5': '75.43 46.56',
}
VIDEO_CONFIGS = ('{}_vit-b16-in21k_8xb16-8x16x1-12e_kinetics400-rgb',
                 '{}_vit-b16-in21k_8xb16-u8-50e_sthv2-rgb')

# Table 10, UperNet 512 x 512: method -> (ADE20K, COCO-Stuff) mIoU
SEG = {
    'full': '47.66 45.89', 'linear-probe': '43.86 44.46', 'dynamic-full-paper-r0.5': '45.74 45.20',
    'adaptformer-d64': '47.52 45.33', 'lora-r32': '47.34 45.53', 'vpt-deep-p8': '46.38 44.87',
    'dyt-r0.5': '46.90 45.63', 'dyt-moe4-r0.5': '47.67 45.71',
}
SEG_CONFIGS = ('{}_upernet_vit-b16-in21k_8xb2-160k_ade20k-512x512',
               '{}_upernet_vit-b16-in21k_8xb2-80k_coco-stuff164k-512x512')

# Table 11, ViTDet Mask R-CNN on COCO: method -> (box AP, mask AP)
DET = {'full': '44.67 39.78', 'adaptformer-d128': '38.71 35.27', 'dyt-r0.5': '39.78 36.11',
       'dyt-moe4-r0.5': '40.97 37.11'}
DET_CONFIG = '{}_mask-rcnn_vit-b16-in21k_simple-fpn_1x_coco'


def paper_metrics() -> Dict[str, Dict[str, Tuple[int, str]]]:
    """Config (``configs/...py``) -> {metric name: (table, value as printed)}."""
    out: Dict[str, Dict[str, Tuple[int, str]]] = {}
    for prefix, accuracies in VTAB1K.items():
        table = 19 if 'vit-l16' in prefix else 3
        for task, value in zip(VTAB_TASKS, accuracies.split(), strict=True):
            out[f'configs/vtab1k/{prefix}_vtab1k-{task}.py'] = {'Top 1 Accuracy': (table, value)}
    for prefix, (datasets, accuracies) in IMAGE.items():
        table = 17 if 'swin' in prefix else 18 if 'vit-l16' in prefix else (
            1 if any(v in prefix for v in ('-attn', '-layer')) else
            7 if any(v in prefix for v in ('-sample', '-random')) else 6)
        for dataset, value in zip(datasets, accuracies.split(), strict=True):
            out[f'configs/image/{prefix}_{dataset}.py'] = {'Top 1 Accuracy': (table, value)}
    for method, values in VIDEO.items():
        for name, value in zip(VIDEO_CONFIGS, values.split(), strict=True):
            out[f'configs/video/{name.format(method)}.py'] = {'Top 1 Accuracy': (6, value)}
    for method, values in SEG.items():
        for name, value in zip(SEG_CONFIGS, values.split(), strict=True):
            out[f'configs/seg/{name.format(method)}.py'] = {'mIoU': (10, value)}
    for method, values in DET.items():
        box, mask = values.split()
        out[f'configs/det/{DET_CONFIG.format(method)}.py'] = {'box AP': (11, box),
                                                               'mask AP': (11, mask)}
    return out
