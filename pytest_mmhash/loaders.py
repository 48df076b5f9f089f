def load_feature(path, key=None): raise NotImplementedError
