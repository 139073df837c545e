"""mcja.losses"""
