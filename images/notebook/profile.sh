# Login shells (JupyterLab's terminals) reset PATH in /etc/profile: put the researcher's
# environment first again, so `pip` and `python` there are the kernel's.
export PATH="/opt/westtek/bin:${PATH}"
export VIRTUAL_ENV=/opt/westtek
