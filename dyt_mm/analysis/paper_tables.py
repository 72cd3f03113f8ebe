"""The paper's figures for the ledger (``tools/analysis/paper_ledger.py``), and why a row
of ours differs.

One entry per row of Tables 3, 4, 5, 6, 10, 11, 17, 18 and 19 that a config in
``configs/`` builds (DyT, NeurIPS 2024; figures copied from the paper's tables).
Each entry:

* ``key``: the row's stable name, ``t<table>-<method>`` (``-img`` / ``-vid`` split
  Table 6's two FLOPs columns);
* ``table``, ``method``: as the paper prints them;
* ``config`` (relative to the checkout) and ``options``: config options (as
  ``--cfg-options`` takes them) where the paper's row has no config of its own (the dense
  Swin-B and ViT-L rows are the DyT config's base, fully tuned);
* ``params`` and ``gflops``: the paper's figures *as printed* (strings: the number
  of decimals tells the precision a match is judged at); ``None`` where the paper
  prints none;
* ``rate``: the target keep rate r of a dispatched row (its FLOPs need a trained
  model), else ``None``;
* ``reason``: why ours differs from the paper, ``None`` where it should not. One
  field, so that a fix that lands elsewhere updates exactly one line.
"""

VTAB = 'configs/vtab1k/{}_vit-b16-in21k_vtab1k-cifar100.py'
IMAGE = 'configs/image/{}_vit-b16-in21k_cifar100.py'
SEG = 'configs/seg/{}_upernet_vit-b16-in21k_8xb2-160k_ade20k-512x512.py'
VIDEO = 'configs/video/{}_vit-b16-in21k_8xb16-8x16x1-12e_kinetics400-rgb.py'
DET = 'configs/det/{}_mask-rcnn_vit-b16-in21k_simple-fpn_1x_coco.py'
SWIN = 'configs/image/dyt-r{}_swin-b-in22k_cifar100.py'
VIT_L = 'configs/image/dyt-r{}_vit-l16-in21k_cifar100.py'
VIT_L_VTAB = 'configs/vtab1k/dyt-r0.5_vit-l16-in21k_vtab1k-cifar100.py'

# the paper's full-tuning row of a base that has only DyT configs: the same base, dense
# (config options, as --cfg-options takes them)
FULLY_TUNED = {'model.backbone.adapter': None, 'model.backbone.dispatch': None,
               'model.backbone.freeze_base': False, 'model.dyt_loss.rate_weight': 0,
               'model.dyt_loss.complete_weight': 0, 'model.dyt_loss.distill_weight': 0}

# reasons shared by several rows
LORA_RANK32 = ('rank 32 on q and v gives 2 x 2 x 768 x 32 x 12 = 1.18 M; the paper prints '
               '1.19 M, the d = 64 adapter\'s count')
VITDET_COUNTING = ('two ways of counting, not another model: ViTDet\'s code also projects the '
                   'padding of its 8 window blocks (64 x 64 padded to 70 x 70; +15.17 G, '
                   'ViTFlops.padded_projections) and fvcore does not count the FPN\'s 9 '
                   'LayerNorms written out in detectron2 (-0.25 G): 539.95 + 15.17 - 0.25 = '
                   '554.87 G dense. Parameters: we count the relative-position tables (0.093 M) '
                   'once in every row. The paper\'s full-tuning 85.80 M is ViTDet without them '
                   '(85.796 M with its 14 x 14 position table), but its 2.56 M equals the '
                   'adapters (2.370 M) plus the tables counted twice (2.555 M; 2.565 M with the '
                   'dispatchers); no single counting gives both. DyT\u2020 N=4\'s 10.24 M is 4 x '
                   '2.56 M, the paper\'s N x single-adapter convention of Table 2')
SWIN_TRAINED = ('our r is the mean of the 24 per-layer keep rates, which for Swin-B (every MLP '
                'costs the same) is also the kept share of MLP FLOPs; no definition of r '
                '(token- or FLOPs-weighted, any subset of stages) gives the paper\'s figures, '
                'which imply kept shares of 0.486 / 0.622 / 0.742 / 0.823 / 0.942 at r = 0.1 '
                '... 0.9: trained models that keep more than r (docs/pretrained.md, Swin-B); '
                'at those rates our count is the paper\'s + 0.07 G (our dense Swin-B counts '
                '15.47 G against 15.40 G)')
VPT_LENGTHS = ('the paper\'s figures are means over the 19 tasks; our VTAB-1K configs use VPT\'s '
               'per-task prompt lengths (visinf/adapter_plus conf/experiment/vtab/vpt.yaml, '
               'matching KMnP/vpt\'s demo where it states them): CIFAR-100 has 10 prompts, and '
               'the 19 tasks average 0.678 M and 24.56 G; no set of lengths gives both of the '
               'paper\'s figures (0.53 M needs about 57 prompts on average, 18.30 G about 8)')
SEG_POSITIONS = ('trainable count includes the position embedding resized to the 32 x 32 grid '
                 'of 512 px crops and no final norm (+0.59 M); the paper counts the 224 px ViT')
TOME_TABLE5 = ('Table 5 is a mean over the 19 VTAB-1K tasks; merging 8 tokens per block gives '
               'the same count on every task, so the difference is the merge schedule\'s')

ROWS = [
    # ---------------------------------------------------------------- Table 3: VTAB-1K, d = 8
    dict(key='t3-full', table=3, method='Full tuning', config=VTAB.format('full'),
         params='85.80', gflops='17.58'),
    dict(key='t3-linear', table=3, method='Frozen (linear)', config=VTAB.format('linear-probe'),
         params='0.00', gflops='17.58'),
    dict(key='t3-lora', table=3, method='LoRA', config=VTAB.format('lora-r8'),
         params='0.29', gflops='17.58'),
    dict(key='t3-vpt', table=3, method='VPT', config=VTAB.format('vpt-deep'),
         params='0.53', gflops='18.30',
         reason=VPT_LENGTHS),
    dict(key='t3-adaptformer', table=3, method='AdaptFormer', config=VTAB.format('adaptformer-d8'),
         params='0.16', gflops='17.61'),
    dict(key='t3-dyt-r0.5', table=3, method='DyT r=0.5', config=VTAB.format('dyt-r0.5'),
         params='0.16', gflops='12.54', rate=0.5),
    dict(key='t3-dyt-r0.7', table=3, method='DyT r=0.7', config=VTAB.format('dyt-r0.7'),
         params='0.16', gflops='14.92', rate=0.7),
    dict(key='t3-dyt-r0.9', table=3, method='DyT r=0.9', config=VTAB.format('dyt-r0.9'),
         params='0.16', gflops='17.07', rate=0.9),
    # ---------------------------------------------------------------- Table 4: throughput
    dict(key='t4-full', table=4, method='Full tuning', config=VTAB.format('full'),
         params=None, gflops='17.58'),
    dict(key='t4-lora', table=4, method='LoRA', config=VTAB.format('lora-r8'),
         params=None, gflops='17.58'),
    dict(key='t4-adaptformer', table=4, method='AdaptFormer',
         config=VTAB.format('adaptformer-d8'), params=None, gflops='17.61'),
    dict(key='t4-vpt', table=4, method='VPT', config=VTAB.format('vpt-deep'),
         params=None, gflops='18.30', reason=VPT_LENGTHS),
    dict(key='t4-dyt-r0.5', table=4, method='DyT r=0.5', config=VTAB.format('dyt-r0.5'),
         params=None, gflops='12.54', rate=0.5),
    # ---------------------------------------------------------------- Table 5: with ToMe
    dict(key='t5-full-tome', table=5, method='Full tuning + ToMe',
         config=VTAB.format('full-tome8'), params='85.80', gflops='13.12', reason=None),
    dict(key='t5-adaptformer-tome', table=5, method='AdaptFormer + ToMe',
         config=VTAB.format('adaptformer-d8-tome8'), params='0.16', gflops='13.29',
         reason=('the paper\'s AdaptFormer + ToMe costs 0.17 G more than its Full + ToMe '
                 '(13.29 vs 13.12) while d = 8 adapters cost 0.03 G on the dense ViT (17.61 vs '
                 '17.58); we count the adapters on the merged tokens (+0.02 G) and cannot '
                 'account for the other 0.15 G')),
    dict(key='t5-dyt-r0.5', table=5, method='DyT r=0.5', config=VTAB.format('dyt-r0.5'),
         params='0.16', gflops='12.54', rate=0.5),
    dict(key='t5-dyt-r0.5-tome', table=5, method='DyT r=0.5 + ToMe',
         config='configs/vtab1k/dyt-r0.5-tome8_vit-b16-in21k_vtab1k-cifar100.py',
         params='0.16', gflops='9.85', rate=0.5),
    # ------------------------------------------- Table 6: complete image data sets and video
    dict(key='t6-full-img', table=6, method='Full tuning', config=IMAGE.format('full'),
         params='85.80', gflops='17.58'),
    dict(key='t6-linear-img', table=6, method='Linear', config=IMAGE.format('linear-probe'),
         params='0', gflops='17.58'),
    dict(key='t6-dynamic-full-img', table=6, method='Dynamic-Full',
         config=IMAGE.format('dynamic-full-paper-r0.5'), params='85.80', gflops='12.24', rate=0.5),
    dict(key='t6-adaptformer-img', table=6, method='AdaptFormer',
         config=IMAGE.format('adaptformer-d64'), params='1.19', gflops='17.81'),
    dict(key='t6-lora-img', table=6, method='LoRA', config=IMAGE.format('lora-r32'),
         params='1.19', gflops='17.58',
         reason=LORA_RANK32),
    dict(key='t6-vpt-img', table=6, method='VPT', config=IMAGE.format('vpt-deep-p8'),
         params='0.07', gflops='18.32'),
    dict(key='t6-dyt-img', table=6, method='DyT', config=IMAGE.format('dyt-r0.5'),
         params='1.19', gflops='12.21', rate=0.5),
    dict(key='t6-dyt-moe4-img', table=6, method='DyT† N=4', config=IMAGE.format('dyt-moe4-r0.5'),
         params='4.80', gflops='12.29', rate=0.5),
    dict(key='t6-full-vid', table=6, method='Full tuning', config=VIDEO.format('full'),
         params='85.80', gflops='142.53'),
    dict(key='t6-linear-vid', table=6, method='Linear', config=VIDEO.format('linear-probe'),
         params='0', gflops='142.53'),
    dict(key='t6-dynamic-full-vid', table=6, method='Dynamic-Full',
         config=VIDEO.format('dynamic-full-paper-r0.5'), params='85.80', gflops='107.67', rate=0.5,
         reason=('a trained model\'s figure: the paper\'s 107.67 G implies that its video '
                 'Dynamic-Full keeps 0.61 of the tokens at r = 0.5 (its DyT row: 0.59)')),
    dict(key='t6-adaptformer-vid', table=6, method='AdaptFormer',
         config=VIDEO.format('adaptformer-d64'), params='1.19', gflops='144.39'),
    dict(key='t6-lora-vid', table=6, method='LoRA', config=VIDEO.format('lora-r32'),
         params='1.19', gflops='142.53',
         reason=LORA_RANK32),
    dict(key='t6-vpt-vid', table=6, method='VPT', config=VIDEO.format('vpt-deep-p8'),
         params='0.07', gflops='148.44'),
    dict(key='t6-dyt-vid', table=6, method='DyT', config=VIDEO.format('dyt-r0.5'),
         params='1.19', gflops='108.31', rate=0.5),
    dict(key='t6-dyt-moe4-vid', table=6, method='DyT† N=4', config=VIDEO.format('dyt-moe4-r0.5'),
         params='4.80', gflops='105.45', rate=0.5),
    # ---------------------------------------------------------------- Table 10: ADE20K UperNet
    dict(key='t10-full', table=10, method='Full tuning', config=SEG.format('full'),
         params='85.80', gflops='605.36', reason=SEG_POSITIONS),
    dict(key='t10-linear', table=10, method='Linear', config=SEG.format('linear-probe'),
         params='0', gflops='605.36'),
    dict(key='t10-dynamic-full', table=10, method='Dynamic-Full',
         config=SEG.format('dynamic-full-paper-r0.5'), params='85.80', gflops='582.46', rate=0.5,
         reason=SEG_POSITIONS + ('; and a trained model\'s figure: the paper\'s 582.46 G implies '
                                 'that it keeps 0.61 of the tokens at r = 0.5')),
    dict(key='t10-adaptformer', table=10, method='AdaptFormer',
         config=SEG.format('adaptformer-d64'), params='1.19', gflops='606.57'),
    dict(key='t10-lora', table=10, method='LoRA', config=SEG.format('lora-r32'),
         params='1.19', gflops='605.36',
         reason=LORA_RANK32),
    dict(key='t10-vpt', table=10, method='VPT', config=SEG.format('vpt-deep-p8'),
         params='0.07', gflops='606.36'),
    dict(key='t10-dyt', table=10, method='DyT', config=SEG.format('dyt-r0.5'),
         params='1.19', gflops='584.57', rate=0.5,
         reason=('a trained model\'s figure: the paper\'s 584.57 G implies that its segmentor '
                 'keeps 0.62 of the tokens at r = 0.5; the dense rows of this table match')),
    dict(key='t10-dyt-moe4', table=10, method='DyT† N=4', config=SEG.format('dyt-moe4-r0.5'),
         params='4.80', gflops='584.40', rate=0.5,
         reason=('a trained model\'s figure: the paper\'s 584.40 G implies that its segmentor '
                 'keeps 0.62 of the tokens at r = 0.5; the dense rows of this table match')),
    # ---------------------------------------------------------------- Table 11: COCO ViTDet
    dict(key='t11-full', table=11, method='Full tuning', config=DET.format('full'),
         params='85.80', gflops='554.86', reason=VITDET_COUNTING),
    dict(key='t11-adaptformer', table=11, method='AdaptFormer',
         config=DET.format('adaptformer-d128'), params='2.56', gflops='564.53',
         reason=VITDET_COUNTING),
    dict(key='t11-dyt', table=11, method='DyT', config=DET.format('dyt-r0.5'),
         params='2.56', gflops='468.40', rate=0.5, reason=VITDET_COUNTING),
    dict(key='t11-dyt-moe4', table=11, method='DyT† N=4', config=DET.format('dyt-moe4-r0.5'),
         params='10.24', gflops='466.32', rate=0.5, reason=VITDET_COUNTING),
    # ---------------------------------------------------------------- Table 17: Swin-B, d = 64
    dict(key='t17-full', table=17, method='Full tuning', config=SWIN.format('0.5'),
         options=FULLY_TUNED, params='86.74', gflops='15.40'),
    dict(key='t17-dyt-r0.1', table=17, method='DyT r=0.1', config=SWIN.format('0.1'),
         params='1.55', gflops='10.72', rate=0.1, reason=SWIN_TRAINED),
    dict(key='t17-dyt-r0.3', table=17, method='DyT r=0.3', config=SWIN.format('0.3'),
         params='1.55', gflops='12.07', rate=0.3, reason=SWIN_TRAINED),
    dict(key='t17-dyt-r0.5', table=17, method='DyT r=0.5', config=SWIN.format('0.5'),
         params='1.55', gflops='13.25', rate=0.5, reason=SWIN_TRAINED),
    dict(key='t17-dyt-r0.7', table=17, method='DyT r=0.7', config=SWIN.format('0.7'),
         params='1.55', gflops='14.05', rate=0.7, reason=SWIN_TRAINED),
    dict(key='t17-dyt-r0.9', table=17, method='DyT r=0.9', config=SWIN.format('0.9'),
         params='1.55', gflops='15.23', rate=0.9, reason=SWIN_TRAINED),
    # ---------------------------------------------------------------- Table 18: ViT-L, d = 64
    dict(key='t18-full', table=18, method='Full tuning', config=VIT_L.format('0.5'),
         options=FULLY_TUNED, params='303.3', gflops='61.60'),
    dict(key='t18-dyt-r0.1', table=18, method='DyT r=0.1', config=VIT_L.format('0.1'),
         params='3.17', gflops='32.56', rate=0.1,
         reason=('a trained model\'s figure: the paper\'s 32.56 G implies that its ViT-L '
                 'keeps 0.25 of the tokens at r = 0.1; the dense rows of this table match')),
    dict(key='t18-dyt-r0.3', table=18, method='DyT r=0.3', config=VIT_L.format('0.3'),
         params='3.17', gflops='36.77', rate=0.3),
    dict(key='t18-dyt-r0.5', table=18, method='DyT r=0.5', config=VIT_L.format('0.5'),
         params='3.17', gflops='43.79', rate=0.5),
    dict(key='t18-dyt-r0.7', table=18, method='DyT r=0.7', config=VIT_L.format('0.7'),
         params='3.17', gflops='51.11', rate=0.7),
    dict(key='t18-dyt-r0.9', table=18, method='DyT r=0.9', config=VIT_L.format('0.9'),
         params='3.17', gflops='60.05', rate=0.9),
    # ---------------------------------------------------------------- Table 19: ViT-L VTAB-1K
    dict(key='t19-full', table=19, method='Full tuning', config=VIT_L_VTAB, options=FULLY_TUNED,
         params='303.3', gflops='61.60'),
    dict(key='t19-dyt-r0.5', table=19, method='DyT r=0.5', config=VIT_L_VTAB,
         params='0.44', gflops='43.52', rate=0.5,
         reason=('d = 8 adapters on 24 layers are 0.418 M, with the dispatchers 0.443 M: the '
                 'paper\'s 0.44 M counts the dispatchers here, unlike its other rows (Tables 3, '
                 '17 and 18 leave them out)')),
]

TABLES = (3, 4, 5, 6, 10, 11, 17, 18, 19)
