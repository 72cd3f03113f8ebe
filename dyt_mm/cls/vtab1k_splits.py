"""VTAB-1K's canonical split sizes: the one table the verification tool checks against.

Source: google-research/task_adaptation (the VTAB paper's code, Zhai et al. 2019,
arXiv:1910.04867), commit d7630d3c43ba052b5a35546b312d9454a9f2c96b: every
``task_adaptation/data/<dataset>_test.py`` asserts ``train800=800``,
``train800val200=1000`` (so ``val200=200``) and the ``test`` count listed here.
The test split is TFDS's ``test`` split, except clevr (TFDS ``validation``),
eurosat and resisc45 (the last 20% of TFDS ``train``), dsprites (the last
10% of TFDS ``train``) and smallnorb (the second half of TFDS ``test``); sun397
uses TFDS's ``sun397/tfds`` config.

The SSF/NOAH release (the ``<task>/{train800,val200,train800val200,test}.txt``
layout) is meant to hold these same counts; for retinopathy it is known to:
BenediktAlkin/vtab1k-pytorch issue #2 and luogen1996/RepAdapter issue #15
(both serving the NOAH release) confirm 42,670 test images, where Kaggle's raw
test set has 53,576 = 42,670 + 10,906 (TFDS made 10,906 of them its
``validation`` split, which VTAB-1K does not test on). The release's other
counts were not checked here (no copy of it was available);
``tools/dataset_converters/verify_dataset.py`` reports any difference.
"""
# Images per split, the same for every task.
FIXED_SPLIT_SIZES = {'train800': 800, 'val200': 200, 'train800val200': 1000}

# Task folder (SSF/NOAH name) -> images in the test split.
TEST_SIZES = {
    'cifar': 10000,
    'caltech101': 6084,
    'dtd': 1880,
    'oxford_flowers102': 6149,
    'oxford_iiit_pet': 3669,
    'svhn': 26032,
    'sun397': 21750,
    'patch_camelyon': 32768,
    'eurosat': 5400,
    'resisc45': 6300,
    'diabetic_retinopathy': 42670,
    'clevr_count': 15000,
    'clevr_dist': 15000,
    'dmlab': 22735,
    'kitti': 711,
    'dsprites_loc': 73728,
    'dsprites_ori': 73728,
    'smallnorb_azi': 12150,
    'smallnorb_ele': 12150,
}
