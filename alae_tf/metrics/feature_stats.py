"""Distances between two sets of feature vectors (numpy, float64)."""

import numpy as np
import scipy.linalg


def mean_and_covariance(features):
    features = np.asarray(features, dtype=np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(features_a, features_b):
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)): the Frechet distance between
    Gaussians fitted to the two sets (FID when the features are Inception pool3)."""
    mu_a, sigma_a = mean_and_covariance(features_a)
    mu_b, sigma_b = mean_and_covariance(features_b)
    return frechet_distance_from_stats(mu_a, sigma_a, mu_b, sigma_b)


def frechet_distance_from_stats(mu_a, sigma_a, mu_b, sigma_b):
    covmean, _ = scipy.linalg.sqrtm(sigma_a @ sigma_b, disp=False)
    if not np.isfinite(covmean).all():
        # Nearly singular product (few samples): regularise as the reference FID code does.
        offset = np.eye(len(sigma_a)) * 1e-6
        covmean = scipy.linalg.sqrtm((sigma_a + offset) @ (sigma_b + offset))
    covmean = np.real(covmean)
    return float(np.sum(np.square(mu_a - mu_b)) + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * np.trace(covmean))
