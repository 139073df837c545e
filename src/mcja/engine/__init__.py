"""mcja.engine"""
