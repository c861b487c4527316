"""miniapps"""
