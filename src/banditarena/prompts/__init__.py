"""banditarena.prompts"""
