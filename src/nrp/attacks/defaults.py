"""Default attack parameters, in [0, 1] units, from the paper's Appendix F unless noted."""

EPS = 16 / 255  # L-inf budget of every attack in the paper
STEP_SIZE = 1.6 / 255  # I-FGSM, MI-FGSM, DIM: "step size 1.6, as per the standard practice" (eps / steps)
STEPS = 10  # I-FGSM, MI-FGSM, DIM
MOMENTUM = 1.0  # MI-FGSM's decay factor mu
DIVERSITY_PROB = 0.7  # DIM's transformation probability p
# DIM's resize range: shrink to [0.9 H, H) and pad back to H, so any model sees its own input size
# (torchattacks' resize_rate=0.9; Xie et al.'s enlarging 299 -> [299, 330) -> 330 is 330 / 299).
DIVERSITY_SCALE = 0.9
# TI's Gaussian kernel side: 15 (sigma 7/3 px), Dong et al.'s choice against defended and adversarially trained
# models, which is what the paper's Table 1 attacks; 7 is common against normally trained ones.
TI_KERNEL = 15
R_FGSM_ALPHA_FRACTION = 1 / 3  # R-FGSM's random step alpha = eps / 3 (16/3 at eps 16); its gradient step is eps - alpha
# PGD is not in Appendix F: 10 iterations (Appendix B) of 2/255, the step of the authors' PGD-through-NRP example.
PGD_STEP_SIZE = 2 / 255
PGD_STEPS = 10
