"""signer"""
