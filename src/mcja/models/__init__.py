"""mcja.models"""
