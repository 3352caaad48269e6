"""Packaging for tspace; everything it needs is read from settings.ini (nbdev 2 layout)."""
from configparser import ConfigParser
import setuptools

config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive']
py_versions = '3.10 3.11 3.12 3.13'.split()
min_python = cfg['min_python']

requirements = cfg.get('requirements', '').split()
dev_requirements = cfg.get('dev_requirements', '').split()
extras = {'dev': dev_requirements}
for key in cfg:
    # optional groups, e.g. `agent_requirements = tensorflow` becomes `pip install tspace[agent]`
    if key.endswith('_requirements') and key != 'dev_requirements':
        extras[key[:-len('_requirements')]] = cfg[key].split()
extras['all'] = sorted({r for k, v in extras.items() if k not in ('dev', 'bench') for r in v})   # bench: peer libraries (torch), never in CI

setuptools.setup(
    name=cfg['lib_name'],
    license='Apache-2.0',
    classifiers=[
        'Development Status :: ' + statuses[int(cfg['status'])],
        'Intended Audience :: ' + cfg['audience'].title(),
        'Natural Language :: ' + cfg['language'].title(),
    ] + ['Programming Language :: Python :: ' + v for v in py_versions[py_versions.index(min_python):]],
    url=cfg['git_url'],
    # `res/` (DBC, torque map, drive cycles, default config) ships inside the package as `tspace.res`.
    packages=setuptools.find_packages(include=['tspace', 'tspace.*']) + ['tspace.res'],
    package_dir={'tspace.res': 'res'},
    package_data={'tspace.res': ['*.*', '**/*.*']},
    include_package_data=True,
    install_requires=requirements,
    extras_require=extras,
    python_requires='>=' + min_python,
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    zip_safe=False,
    entry_points={
        'console_scripts': cfg.get('console_scripts', '').split(),
        'nbdev': [f"{cfg.get('lib_path')}={cfg.get('lib_path')}._modidx:d"],
    },
    **{k: cfg[k] for k in ('version', 'description', 'keywords', 'author', 'author_email')},
)
