"""mcja.evaluation"""
