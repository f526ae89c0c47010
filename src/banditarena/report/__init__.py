"""banditarena.report"""
