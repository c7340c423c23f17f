"""Model layer: transformer, video VAE, audio VAE + vocoder, latent upsampler, text path, checkpoint loading."""
