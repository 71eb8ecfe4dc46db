"""timestamp"""
